"""Log-scale latency histograms: fast, mergeable percentiles for ``usage`` and ``stats``.

Bucket ``i`` covers ``[BASE * 2**(i/8), BASE * 2**((i+1)/8))`` milliseconds (8 buckets per
doubling, starting at 10 µs); a percentile is reported as the bucket's geometric middle, so
it is within about ±4.5 % of the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

BASE_MS = 0.01
PER_DOUBLING = 8


MAX_MS = 1e9  # ~11 days: anything longer (or inf/NaN) lands in the last bucket


def bucket(ms: float) -> int:
    if ms <= BASE_MS:
        return 0
    if not ms < MAX_MS:
        ms = MAX_MS
    return int(math.log2(ms / BASE_MS) * PER_DOUBLING)


def value(idx: int) -> float:
    return BASE_MS * 2 ** ((idx + 0.5) / PER_DOUBLING)


def add(hist: dict[int, int], ms: float) -> None:
    b = bucket(ms)
    hist[b] = hist.get(b, 0) + 1


def merge(into: dict[int, int], other: dict) -> dict[int, int]:
    for k, n in other.items():
        k = int(k)
        into[k] = into.get(k, 0) + int(n)
    return into


def percentile(hist: dict[int, int], q: float) -> float | None:
    n = sum(hist.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for k in sorted(hist):
        seen += hist[k]
        if seen >= rank:
            return round(value(k), 3)
    return round(value(max(hist)), 3)  # pragma: no cover - unreachable


def percentiles(hist: dict[int, int], qs: Iterable[float]) -> list[float | None]:
    return [percentile(hist, q) for q in qs]
