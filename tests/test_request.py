"""The serving request (tpplan/plan/request.py): one set of rules and defaults for the command line and for
`tpplan check`, each saying a broken rule in its own spelling (issue 19: one request model)."""

from __future__ import annotations

import json

import pytest

from tpplan.plan.request import RequestError, ServeRequest


def test_defaults(cat):
    """The prompt fills what the output leaves of the context; the model's own dtypes; vLLM's 0.9 memory fraction
    (vllm/config/cache.py gpu_memory_utilization) unless the caller sets one."""
    m = cat.model("llama-8b")
    w = ServeRequest(ctx=8_000, output_len=256).workload(m, cat)
    assert (w.ctx, w.input_len, w.output_len, w.concurrency) == (8_000, 7_744, 256, 1)
    assert (w.weight_dtype, w.kv_dtype) == ("bf16", "bf16")
    assert w.gpu_memory_utilization == 0.9 and not w.memory_fraction_given
    given = ServeRequest(ctx=8_000, output_len=256, gpu_memory_utilization=0.8, kv_dtype="fp8").workload(m, cat)
    assert given.gpu_memory_utilization == 0.8 and given.memory_fraction_given and given.kv_dtype == "fp8"


@pytest.mark.parametrize("fields, kw", [
    (("input_len", "output_len", "ctx"), {"ctx": 4_000, "input_len": 4_000, "output_len": 256}),
    (("gpu_memory_utilization",), {"ctx": 4_000, "output_len": 256, "gpu_memory_utilization": 1.5}),
    (("kv_dtype",), {"ctx": 4_000, "output_len": 256, "kv_dtype": "int8"}),
    (("weight_dtype",), {"ctx": 4_000, "output_len": 256, "weight_dtype": "fp3"}),
])
def test_a_broken_rule_names_its_fields(cat, fields, kw):
    with pytest.raises(RequestError) as e:
        ServeRequest(**kw).workload(cat.model("llama-8b"), cat)
    assert e.value.fields == fields
    # each edge writes the fields its own way; the rest of the sentence is the same
    flags = e.value.text(lambda f: "--" + f.replace("_", "-"))
    keys = e.value.text(lambda f: f"<{f}>")
    assert flags.replace("--", "").replace("-", "_") == keys.replace("<", "").replace(">", "").replace("-", "_")


def test_command_line_and_check_say_the_same_rule(cli, tmp_path, monkeypatch):
    """A request the two edges both read breaks the same rule with the same words after its subject."""
    monkeypatch.chdir(tmp_path)
    cases = [(["--ctx", "4k", "--input-len", "4k", "--output-len", "256"], "ctx: 4k\ninput_len: 4k\noutput_len: 256\n",
              "(256) exceeds"),
             (["--ctx", "4k", "--gpu-memory-utilization", "1.5"], "gpu_memory_utilization: 1.5\n",
              "must be in (0, 1]; got 1.5"),
             (["--ctx", "4k", "--kv-dtype", "int8"], "kv_cache_dtype: int8\n", "the vllm KV cache takes auto")]
    for flags, body, words in cases:
        code, _, err = cli("estimate", "--model", "llama-8b", "--gpu", "h100", *flags)
        assert code == 2 and words in err, err
        (tmp_path / "d.yaml").write_text("model: llama-8b\ngpu: h100\n" + body)
        code, out, _ = cli("check", "d.yaml", "--format", "json")
        found = json.loads(out)["findings"]
        assert code == 2 and [f["rule"] for f in found] == ["TPP100"] and words in found[0]["message"], found
        # after the words, the same sentence but for the spelling of the fields
        tail = err.split(words, 1)[1].strip().replace("--", "").replace("-", "_")
        assert tail == found[0]["message"].split(words, 1)[1].strip().replace("-", "_")


def test_an_output_that_fills_the_context_is_named(cat):
    """Without a prompt length, an output of ctx tokens or more leaves no prompt: the error names the output and
    the context (not a prompt length the caller never gave)."""
    with pytest.raises(RequestError) as e:
        ServeRequest(ctx=100, output_len=256).workload(cat.model("llama-8b"), cat)
    assert e.value.fields == ("output_len", "ctx") and "(256) leaves no room for a prompt" in str(e.value)
