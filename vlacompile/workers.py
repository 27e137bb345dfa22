"""Jobs in worker processes, results in the order asked: training's frames, the condition map's
fit frames, a policy's evaluation (sim/eval_workers.py), a small model's graphs (export) and its
layer search's candidates (calibration/layer_search.py).

Drawing a frame is numpy and PIL on one core; a 2-core machine draws nearly twice as many in the
same time with two processes. Each job is self-contained (an episode draws from generators seeded
by its own seeds), so the results, and their order, do not depend on how many workers there are.
"""

from __future__ import annotations

import os
import sys
from collections import deque


def usable_cores() -> int:
    """Cores this process may run on (its affinity, where the OS tells)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def can_fork() -> bool:
    """fork is safe on Linux only: macOS's system libraries break after it, and Windows has none."""
    return sys.platform.startswith("linux")


def small_model_workers(model, jobs: int) -> int:
    """Processes for `jobs` independent jobs on a torch `model`: one per core, at most one per job, for a
    model of at most costs.CPU_PARAMS parameters on the CPU where fork is safe; else 0 (this process):
    a larger model would be copied into each, and a GPU's context does not survive a fork."""
    from .costs import CPU_PARAMS

    params = list(model.parameters())
    small = sum(p.numel() for p in params) <= CPU_PARAMS and all(p.device.type == "cpu" for p in params)
    workers = min(usable_cores(), jobs)
    return workers if small and workers > 1 and can_fork() else 0


def one_torch_thread() -> None:
    """In a worker process: torch, where this process has loaded it, computes on one thread (the
    processes share the cores), as PyTorch's own DataLoader workers do after a fork."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


_SHARED = None  # a forked worker's inherited state: see with_state


def with_state(fn, state, jobs, workers: int):
    """fn(state, job) for each job, in order: here (0 workers), or in `workers` forked processes that
    inherit `state` (a model, say: never pickled) and compute with one torch thread. `fn` must be a
    module-level function."""
    if not workers or not can_fork():
        yield from (fn(state, job) for job in jobs)
        return
    yield from ordered(_shared_job, ((fn, job) for job in jobs), workers, "fork", _inherit, (state,))


def _inherit(state) -> None:
    global _SHARED
    one_torch_thread()
    _SHARED = state


def _shared_job(item):
    fn, job = item
    return fn(_SHARED, job)


def ordered(fn, jobs, workers: int, start: str = "forkserver", initializer=None, initargs: tuple = ()):
    """fn(job) for each job, in order, computed by `workers` processes (0: in this one; 1 still
    overlaps the rendering with the caller's own work, as training's does). At most
    2 x workers results wait at a time, so an endless `jobs` stays bounded in memory. `fn` must be a
    module-level function; `initializer(*initargs)` runs once in each worker (in-process: once here).

    `start`: forkserver keeps a CUDA context and torch's threads out of the workers (training's
    loader); fork needs no `if __name__ == "__main__"` guard in the caller's script (library calls)
    and hands the workers the caller's objects without pickling them. Jobs that run torch on CPU
    tensors set it to one thread in their initializer first, as PyTorch's own DataLoader workers do
    after a fork."""
    if start == "fork" and not can_fork():
        workers = 0
    if not workers:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context(start).Pool(workers, initializer, initargs) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.apply_async(fn, (job,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
