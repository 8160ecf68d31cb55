"""The search scaffold serving and training share: rank the feasible rows of every GPU type (objective, then
fewer GPUs, then a tie-break), pick the list (dominated rows and duplicates left out, at most
``rows_per_gpu_type`` per type), count rejections (``grid.count_reasons``) and try relaxations (the smallest
power of two of GPUs that makes a rerun feasible). Each search brings its evaluator, objective key and rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt


def rank_order(key: npt.NDArray[np.float64], gpus: npt.ArrayLike, tiebreak: npt.ArrayLike,
               relative: bool = True) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(indices best first, the compared keys): by ``key`` (lower is better) compared to 9 significant digits
    (``relative``: its signed log rounded; else 9 decimals), so float noise cannot beat the fewer-GPUs
    tie-break; then fewer ``gpus``; then lower ``tiebreak``."""
    if relative:
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.sign(key) * np.round(np.log(np.abs(key)), 9)
    else:
        k = np.round(key, 9)
    return np.lexsort((np.asarray(tiebreak), np.asarray(gpus), k)).astype(np.int64), np.asarray(k, dtype=np.float64)


def pick(order: Iterable[int], group: Callable[[int], int | str], top: int, gpu_types: int,
         admit: Callable[[int], bool], on_pick: Callable[[int], None] | None = None) -> list[int]:
    """Walk ranked rows best first and keep up to ``top``: a row must be ``admit``-ted (not dominated by a better
    one, not a duplicate; ``admit`` may record the row in its own state), and its GPU type (``group``) must
    not yet have ``rows_per_gpu_type`` rows listed. ``on_pick`` records a kept row."""
    cap = rows_per_gpu_type(top, gpu_types)
    per: dict[int | str, int] = {}
    out: list[int] = []
    for j in order:
        if not admit(j):
            continue
        k = group(j)
        if per.get(k, 0) >= cap:
            continue
        per[k] = per.get(k, 0) + 1
        out.append(j)
        if on_pick is not None:
            on_pick(j)
        if len(out) >= top:
            break
    return out


def rows_per_gpu_type(top: int, gpu_types: int) -> int:
    """How many rows of one GPU type a list of ``top`` shows: all with one type, else ceil(top / 3), so the
    runners-up on other GPUs show (serving and training lists alike)."""
    return top if gpu_types == 1 else max(1, -(-top // 3))


def smallest_gpu_power_of_two(now: int, works: Callable[[int], bool], start: int = 0) -> int | None:
    """The smallest power of two above ``now`` (and at least ``start``), up to 64x ``now`` and 2^20, for
    which ``works`` (a rerun search) holds; None when none does."""
    more = max(1 << max(now, 1).bit_length(), start)
    while more <= min(64 * now, 1 << 20):
        if works(more):
            return more
        more *= 2
    return None
