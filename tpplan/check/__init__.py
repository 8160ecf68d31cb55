"""`tpplan check`: deployment files (vLLM, SGLang, TensorRT-LLM, llm-d, Dynamo, Helm) read, judged by the
rule table against the engine, and written as text, JSON, SARIF, GitHub annotations or markdown."""
