"""Wall-clock latency of a call: warm-up runs, then timed runs; percentiles in milliseconds.

Numbers are only comparable within one run on one machine: report ratios measured together.
"""

from __future__ import annotations

import time

import numpy as np


def time_calls(fn, warmup: int = 2, runs: int = 10) -> dict:
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1e3)
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)), "runs": runs,
            "warmup": warmup}
