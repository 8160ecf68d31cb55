"""Quantity parsing at the edge (vLLM human_readable_int conventions, SI/IEC bytes)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpplan.units import (
    UnitError,
    format_bytes,
    format_seconds,
    format_sig,
    parse_bytes,
    parse_dataset_tokens,
    parse_flops,
    parse_rate,
    parse_seconds,
    parse_tokens,
    parse_usd,
)


def test_tokens_follow_vllm_case_rule():
    # vllm/engine/arg_utils.py human_readable_int: lowercase decimal, uppercase binary
    assert parse_tokens("128k") == 128_000
    assert parse_tokens("128K") == 131_072
    assert parse_tokens("25.6k") == 25_600
    assert parse_tokens("32Ki") == 32_768
    assert parse_tokens("15T") == 15 * 2**40
    assert parse_tokens("15t") == 15 * 10**12
    # dataset sizes are decimal in every paper (Llama 3.1: 15.6T tokens), whatever the case
    assert parse_dataset_tokens("15T") == parse_dataset_tokens("15t") == 15 * 10**12
    assert parse_dataset_tokens("14.8T") == 14_800_000_000_000 and parse_dataset_tokens("8Ki") == 8192
    # billions as papers write them: GPT-3 was trained on 300B tokens (Brown et al. 2020, Table 2.2)
    assert parse_dataset_tokens("300B") == parse_dataset_tokens("300b") == parse_dataset_tokens("0.3T") == 3 * 10**11
    assert parse_tokens(8192) == 8192


@pytest.mark.parametrize("bad", ["", "abc", "-5", "0", "1.5", "12x", "1e400", "nan"])
def test_tokens_reject_bad_input(bad):
    with pytest.raises(UnitError):
        parse_tokens(bad)


def test_bytes_rates_seconds_usd():
    assert parse_bytes("1GiB") == 2**30
    assert parse_bytes("80 GB") == 80 * 10**9
    assert parse_bytes("134217728") == 134_217_728
    assert parse_rate("3.35TB/s") == pytest.approx(3.35e12)
    assert parse_rate("450 GB/s") == pytest.approx(450e9)
    assert parse_rate("50GBps") == pytest.approx(50e9)  # as its docstring always said (the greedy unit ate "ps")
    assert parse_rate("1GiB/s") == 2**30
    for bits in ("400Gb/s", "1600Gbps", "8b/s"):  # a NIC's line rate in bits is refused, not read as bytes (8x)
        with pytest.raises(UnitError, match="400 Gb/s is 50GB/s"):
            parse_rate(bits)
    assert parse_flops("1.979 PFLOP/s") == pytest.approx(1.979e15)
    assert parse_seconds("2min") == 120.0 and parse_seconds("300us") == pytest.approx(3e-4)
    assert parse_usd("1,000") == 1000.0 and parse_usd("40k") == 40e3
    assert parse_seconds("50ms") == pytest.approx(0.05)
    assert parse_seconds("2s") == 2.0
    assert parse_usd("$5.5M") == 5.5e6
    assert format_bytes(70.6e9) == "70.6 GB"
    assert format_bytes(2**30, binary=True) == "1.0 GiB"
    with pytest.raises(UnitError):
        parse_bytes("-1GiB")


@given(st.integers(min_value=1, max_value=10**9))
def test_tokens_roundtrip_integers(n):
    assert parse_tokens(str(n)) == n
    assert parse_tokens(f"{n}K") == n * 1024


def test_band_shares_the_unit_only_when_all_three_have_it():
    from tpplan.render import band

    assert band(6.12e-3, [4.74e-3, 10.9e-3], format_seconds) == "6.12 ms (4.74-10.9)"
    assert band(0.98, [0.85, 1.2], format_seconds) == "980 ms (850 ms-1.2 s)"
    assert band(3.59, None, format_seconds) == "3.59 s"


def test_three_significant_digits_never_print_an_exponent_a_reader_must_decode():
    """Table cells ($/1M tokens, requests in a replica, requests/s) printed with '.3g' read '1.13e+03' from 1,000
    up (Llama-3.1-405B at TP4 PP3 on H100: $1,130 per 1M tokens). format_sig keeps '.3g' below 1,000 and writes
    the same three digits with separators above."""
    assert [format_sig(x) for x in (0.0521, 830.0, 999.4, 13.0, 0.0, 1e-7)] == [
        "0.0521", "830", "999", "13", "0", "1e-07"]
    assert [format_sig(x) for x in (999.6, 1130.4, 1234567.0, -1500.0)] == ["1,000", "1,130", "1,230,000", "-1,500"]
    assert format_sig(float("inf")) == "inf" and format_sig(float("nan")) == "nan"


@given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False))
def test_format_sig_is_dot_3g_without_the_exponent(x):
    assert float(format_sig(x).replace(",", "")) == float(f"{x:.3g}")
    assert "e" not in format_sig(x) or abs(x) < 1e-4
