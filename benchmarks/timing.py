"""Repeated wall-clock timing of calls, alone or taking turns."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def _summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def time_calls(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median, min and max seconds over ``repeats`` calls after one warm-up call."""
    return time_interleaved({"call": fn}, repeats)["call"]


def time_interleaved(fns: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Median, min and max seconds of each call over ``repeats`` rounds in which every call runs once.

    After one warm-up call each, the calls take turns (a, b, c, a, b, c, ...), so that load
    from other processes on the machine falls on all of them alike instead of on whichever
    happened to be measured while it lasted.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - start)
    return {label: _summary(values) for label, values in times.items()}
