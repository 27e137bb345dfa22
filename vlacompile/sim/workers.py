"""Rendering episodes in worker processes, results in the order asked.

Drawing a frame is numpy and PIL on one core; a 2-core machine renders twice as many in the same
time with two processes. Each job is self-contained (an episode draws from generators seeded by its
own seeds), so the results, and their order, do not depend on how many workers there are.
"""

from __future__ import annotations

import os
import sys
from collections import deque


def usable_cores() -> int:
    """Cores this process may run on (its affinity, where the OS tells)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ordered(fn, jobs, workers: int, start: str = "forkserver"):
    """fn(job) for each job, in order, computed by `workers` processes (0: in this one; 1 still
    overlaps the rendering with the caller's own work, as training's does). At most
    2 x workers results wait at a time, so an endless `jobs` stays bounded in memory. `fn` must be a
    module-level function.

    `start`: forkserver keeps a CUDA context and torch's threads out of the workers (training's
    loader); fork needs no `if __name__ == "__main__"` guard in the caller's script, for library
    calls whose jobs draw with numpy and PIL only."""
    if start == "fork" and not sys.platform.startswith("linux"):
        workers = 0  # macOS's system libraries are unsafe after fork, and Windows has none: draw here
    if not workers:
        yield from map(fn, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context(start).Pool(workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.apply_async(fn, (job,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
