"""Parse and format quantities at the edge; everything inside tpplan is in base SI units.

Conventions (vLLM's ``human_readable_int`` in ``vllm/engine/arg_utils.py``): for token counts a lowercase
suffix is decimal and an uppercase one binary, ``128k`` = 128,000 and ``128K`` = 131,072; ``Ki``/``Mi``
are always binary. Byte sizes follow SI/IEC: ``GB`` = 1e9, ``GiB`` = 2**30. Rates: ``TB/s`` = 1e12 B/s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "UnitError",
    "parse_tokens",
    "parse_count",
    "parse_bytes",
    "parse_rate",
    "parse_flops",
    "parse_seconds",
    "parse_usd",
    "format_bytes",
    "format_seconds",
    "format_rate",
    "format_count",
    "format_usd",
]


class UnitError(ValueError):
    """A quantity string could not be parsed; the message says what was expected."""


_NUM = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

_TOKEN_SUFFIX = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "K": 2**10,
    "M": 2**20,
    "G": 2**30,
    "T": 2**40,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}

_BYTE_SUFFIX = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
}


def _finite_nonneg(value: float, text: str, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise UnitError(f"{what} must be a finite, non-negative number; got {text!r}")
    return value


HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12
"""730 h: the month of AWS / GCP / Azure monthly estimates (and of every $/month and ``1mo`` here)."""
MAX_TOKENS = 2**50
"""Largest token count or integer setting parsed (a context, a batch, a training set of 15T tokens): far above
any real one, and well inside numpy's 64-bit integers."""


def parse_tokens(text: str | int, what: str = "token count") -> int:
    """Token counts: ``128k`` -> 128,000, ``128K`` -> 131,072, ``32Ki`` -> 32,768, ``16M`` -> 16,777,216
    (vLLM's rule: lowercase decimal, uppercase binary; Llama 3's "16M-token batch" is 2,048 x 8,192).

    A positive integer is required; fractions such as ``25.6k`` are allowed when they land on an integer.
    """
    if isinstance(text, bool):
        raise UnitError(f"{what} must be a positive integer such as 8192, 128k or 128K; got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        s = str(text).strip().replace("_", "").replace(",", "")
        m = re.fullmatch(_NUM + r"\s*(Ki|Mi|Gi|Ti|[kKmMgGtT]?)", s)
        if not m:
            raise UnitError(
                f"{what} must be a positive integer such as 8192, 128k (=128,000) or 128K (=131,072); "
                f"got {text!r}"
            )
        raw = float(m.group(1)) * _TOKEN_SUFFIX[m.group(2)]
        if not math.isfinite(raw) or abs(raw - round(raw)) > 1e-6 * max(1.0, raw):
            raise UnitError(f"{what} must be a whole number of tokens; {text!r} is {raw}")
        value = int(round(raw))
    if value <= 0:
        raise UnitError(f"{what} must be a positive integer; got {text!r}")
    if value > MAX_TOKENS:
        raise UnitError(f"{what} must be at most {MAX_TOKENS:,} (2^50); got {text!r}")
    return value


def parse_dataset_tokens(text: str | int, what: str = "tokens") -> int:
    """Training-set sizes are decimal in every paper (Llama 3.1: 15.6T; DeepSeek-V3: 14.8T), so ``15T``,
    ``15t`` and ``2B`` are 10^12 / 10^9 multiples whatever the case; ``Ki``/``Mi``/``Gi``/``Ti`` stay binary."""
    if isinstance(text, str):
        t = text.strip()
        if t[-1:] in ("B", "b"):  # billions, as papers write it (GPT-3: 300B tokens)
            t = t[:-1] + "g"
        if t[-1:] and t[-1] in "KMGT" and t[-2:-1] != "i":
            t = t[:-1] + t[-1].lower()
        return parse_tokens(t, what)
    return parse_tokens(text, what)


def parse_count(text: str | int, what: str = "count") -> int:
    """A plain positive integer with optional decimal suffix (``64``, ``16k``)."""
    return parse_tokens(text, what)


def parse_bytes(text: str | int | float, what: str = "size") -> int:
    """Byte sizes: ``80GiB``, ``80 GB`` (=80e9), ``1MiB``, ``134217728``. Bare numbers are bytes."""
    if isinstance(text, bool):
        raise UnitError(f"{what} must be a size such as 1GiB or 80GB; got {text!r}")
    if isinstance(text, int | float):
        return int(_finite_nonneg(float(text), str(text), what))
    s = str(text).strip().replace("_", "").replace(",", "")
    m = re.fullmatch(_NUM + r"\s*([A-Za-z]*)", s)
    if not m or m.group(2).lower() not in _BYTE_SUFFIX and m.group(2) != "":
        raise UnitError(f"{what} must be a size such as 1GiB, 512MiB or 80GB; got {text!r}")
    mult = _BYTE_SUFFIX.get(m.group(2).lower(), 1)
    return int(round(_finite_nonneg(float(m.group(1)) * mult, s, what)))


def _scaled(text: str | float, what: str, suffix: str, mult_of: Callable[[Any], float | None], example: str,
            prep: Callable[[str], str] = lambda s: s) -> float:
    """A number with an optional unit (the regex ``suffix`` after the number; ``mult_of`` gives the unit's
    multiplier, None for one it does not know). Bare numbers pass through; spaces are dropped."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return _finite_nonneg(float(text), str(text), what)
    m = re.fullmatch(_NUM + suffix, prep(str(text).strip().replace(" ", "")))
    mult = mult_of(m.group(2)) if m else None
    if m is None or mult is None:
        raise UnitError(f"{what} must be {example}; got {text!r}")
    return _finite_nonneg(float(m.group(1)) * mult, str(text), what)


def parse_rate(text: str | float, what: str = "bandwidth") -> float:
    """Bandwidth in bytes/s: ``3.35TB/s``, ``450 GB/s``, ``50GBps``; bare numbers are B/s."""
    return _scaled(text, what, r"([A-Za-z]*?)(?:/s|ps)?", _byte_rate_unit,
                   "a rate in bytes/s such as 3.35TB/s or 450GB/s (a link's 400 Gb/s is 50GB/s)")


def _byte_rate_unit(unit: str) -> float | None:
    if not unit:
        return 1.0
    if unit.endswith("b"):
        return None  # bits (Gb/s, Gbps): refused, not read as bytes
    return _BYTE_SUFFIX.get(unit.lower())


_FLOP_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SECONDS = {None: 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0,
            "d": 86400.0}
_USD = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "b": 1e9, "B": 1e9}


def parse_flops(text: str | float, what: str = "FLOP rate") -> float:
    """FLOP/s: ``989TFLOPS``, ``1.979 PFLOP/s``, bare numbers are FLOP/s."""
    return _scaled(text, what, r"([kMGTPE]?)(?:FLOPS|FLOP/s|flops|flop/s)?", _FLOP_PREFIX.get,
                   "a rate such as 989TFLOPS")


def parse_seconds(text: str | float, what: str = "time") -> float:
    """Durations: ``50ms``, ``2s``, ``1.5 s``, ``300us``, ``0.05`` (seconds)."""
    return _scaled(text, what, r"(s|ms|us|µs|ns|min|h|d)?", _SECONDS.get,
                   "a duration such as 50ms, 2s or 0.05")


def parse_usd(text: str | float, what: str = "price") -> float:
    """Dollar amounts: ``2.49``, ``$2.49``, ``5.5M`` (=5.5e6), ``40k``."""
    return _scaled(text, what, r"([kKmMbB]?)", _USD.get, "a dollar amount such as 2.49 or 5.5M",
                   prep=lambda s: s.replace(",", "").lstrip("$"))


def format_bytes(n: float | None, binary: bool = False) -> str:
    """``70.6 GB`` (decimal, the default for reports) or ``65.8 GiB`` (binary)."""
    if n is None or not math.isfinite(n):  # null in JSON: an unstable rate's figure, a run without --tokens
        return "n/a"
    base, units = (1024.0, ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]) if binary else (
        1000.0, ["B", "kB", "MB", "GB", "TB", "PB"])
    x = float(n)
    for unit in units:
        if abs(x) < base or unit == units[-1]:
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= base
    return f"{x:.1f} {units[-1]}"  # pragma: no cover - loop always returns


def format_seconds(t: float | None) -> str:
    """Human time with 3 significant digits: ``18.6 ms``, ``1.24 s``, ``42 us``, ``3.2 days``."""
    if t is None or not math.isfinite(t):
        return "n/a"
    if t >= 2 * 86400:
        return f"{t / 86400:.1f} days"
    if t >= 120:
        return f"{t / 3600:.2f} h" if t >= 7200 else f"{t / 60:.1f} min"
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def format_rate(b: float) -> str:
    """``3.35 TB/s``."""
    return format_bytes(b) + "/s" if math.isfinite(b) else "n/a"


def format_count(x: float | None) -> str:
    """``70.55B``, ``37.6B``, ``1.2M``, ``8192``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.4g}{suf}"
    return f"{x:.4g}"


def format_sig(x: float | None, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits as ``format(x, ".3g")`` writes it, but without an exponent from
    1,000 up: ``0.0521``, ``830``, ``1,130`` (not ``1.13e+03``); null is 'n/a'."""
    if x is None:
        return "n/a"
    text = f"{x:.{digits}g}"
    if math.isfinite(x) and abs(float(text)) >= 10**digits:  # 999.6 rounds to 1e+03 too
        return f"{float(text):,.0f}"
    return text


def format_usd(x: float | None) -> str:
    """``$2.49``, ``$1,234``, ``$5.58M``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e6:
        return f"${x / 1e6:,.3g}M" if abs(x) < 1e9 else f"${x / 1e9:,.3g}B"
    if abs(x) >= 100:
        return f"${x:,.0f}"
    return f"${x:.2f}" if abs(x) >= 0.01 or x == 0 else f"${x:.4f}"


def parse_request_rate(text: str | float, what: str = "rate") -> float:
    """Requests per second from ``12/s``, ``12 rps``, ``720/min``, ``4000/h`` or a bare number (per second)."""
    if isinstance(text, bool):
        raise UnitError(f"{what} must be a request rate such as 12/s; got {text!r}")
    if isinstance(text, int | float):
        v = float(text)
    else:
        t = str(text).strip().lower().replace(" ", "")
        per = 1.0
        for suffix, div in (("req/s", 1.0), ("/s", 1.0), ("rps", 1.0), ("/min", 60.0), ("/h", 3600.0)):
            if t.endswith(suffix):
                t, per = t[: -len(suffix)], div
                break
        try:
            v = float(t) / per
        except ValueError:
            raise UnitError(f"{what} must look like 12/s, 720/min or 4000/h; got {text!r}") from None
    if not (v > 0 and v < 1e9):
        raise UnitError(f"{what} must be a positive request rate below 1e9/s; got {text!r}")
    return v


def parse_period(text: str | float, what: str = "period") -> float:
    """A rental period in seconds: every ``parse_seconds`` form plus ``2w`` (weeks), ``1mo`` (a month of 730 h =
    8,760 h / 12, the cloud billing convention) and ``1y`` (8,760 h). Must be positive."""
    s = str(text).strip().replace(" ", "").lower()
    m = re.fullmatch(_NUM + r"(w|wk|weeks?|mo|months?|y|yr|years?)", s)
    if m:
        unit = m.group(2)
        mult = (7 * 86400.0 if unit.startswith("w") else HOURS_PER_MONTH * 3600.0 if unit.startswith("mo")
                else HOURS_PER_YEAR * 3600.0)
        value = _finite_nonneg(float(m.group(1)) * mult, str(text), what)
    else:
        try:
            value = parse_seconds(text, what)
        except UnitError:
            raise UnitError(f"{what} must be a duration such as 30d, 720h, 2w, 1mo (730 h) or 1y (8,760 h); "
                            f"got {text!r}") from None
    if value <= 0:
        raise UnitError(f"{what} must be longer than zero; got {text!r}")
    return value
