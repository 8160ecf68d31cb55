def spec_from_hf(*a, **k): raise NotImplementedError
