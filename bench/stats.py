"""Latency and rate summaries. Pure functions: the smoke test checks their shape, never their values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    frac = rank - low
    return float(sorted_values[low] * (1 - frac) + sorted_values[high] * frac)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """count, mean, p50/p95/p99 and max in milliseconds (NaN-free: ``None`` when there is no sample)."""
    values = sorted(seconds)
    if not values:
        return {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(values),
        "mean_ms": round(1000 * sum(values) / len(values), 2),
        "p50_ms": round(1000 * percentile(values, 50), 2),
        "p95_ms": round(1000 * percentile(values, 95), 2),
        "p99_ms": round(1000 * percentile(values, 99), 2),
        "max_ms": round(1000 * values[-1], 2),
    }


def steady_rate(completions: Sequence[float], trim: float = 0.1) -> float | None:
    """Completions per second between the ``trim`` and ``1 - trim`` quantiles of completion times.

    Trimming drops the ramp-up (connections opening, first conversations being created) and the
    tail (the last few stragglers), so the figure is the *sustained* rate, not start-up noise.
    """
    times = sorted(completions)
    if len(times) < 10:
        if len(times) >= 2 and times[-1] > times[0]:
            return (len(times) - 1) / (times[-1] - times[0])
        return None
    lo = int(len(times) * trim)
    hi = max(lo + 1, int(len(times) * (1 - trim)) - 1)
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else None


def pacing_rate(completions: Sequence[float], began: float) -> float:
    """The rate a paced (open-loop) run is offered a fraction of, from the flat-out run.

    Below 10 completions the trimmed steady rate means nothing: a handful of arrivals seen in one
    poll round sit milliseconds apart and would claim thousands per second. The whole run's rate
    (completions since the run began) is the honest figure then.
    """
    if len(completions) >= 10:
        rate = steady_rate(completions)
        if rate is not None:
            return rate
    last = max(completions, default=began)
    return len(completions) / (last - began) if last > began else 0.0


def paced_count(rate: float, seconds: float, flat_out_messages: int) -> int:
    """How many messages a paced run of ``seconds`` at ``rate`` sends, bounded at 10× the flat-out
    run so a mismeasured rate can never queue more than the system can drain in the budget."""
    return max(1, min(int(rate * seconds), 10 * flat_out_messages))


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return round(value / reference, 3)
