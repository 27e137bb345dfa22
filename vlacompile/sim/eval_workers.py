"""A compiled policy's episodes spread over worker processes (`vlacompile eval --workers`).

ONNX Runtime's CPU kernels gave bit-identical outputs at one and two intra-op threads on each of the
embedded default's three fp32 graphs, and every episode draws its scene and its noise from its own
seeds, so an evaluation split over processes runs the same episodes, step for step, as one process
does (tests/sim/test_eval_workers.py; 100 episodes, docs/BENCHMARKS.md). On a 2-core CPU, two
processes of one thread each ran them in 55% of the time of one process of two threads: the tiny
graphs keep two threads poorly busy, and drawing the camera image takes one core.

Only fp32 graphs go to workers (sim/policies.open_graphs). The fp16 graphs' outputs change with the
thread count: on the same 100 episodes at one and at two threads, 74 differed in some step and 12 in
their outcome (6 each way; 70% both times). PyTorch's do too (by about 1e-8), so the reference and
the rewritten model stay in the calling process.
"""

from __future__ import annotations

import os

from .workers import ordered

_POLICY = None  # this worker's policy, opened once by _open


def _open(rebuild, ensemble: int) -> None:
    global _POLICY
    from ..backends import onnxruntime

    onnxruntime.THREADS = 1  # one per process: the processes share the cores
    _POLICY = rebuild()
    if ensemble:
        from .ensemble import AdaptiveEnsemble

        _POLICY = AdaptiveEnsemble(_POLICY, ensemble)


def _episode(job: tuple):
    from .evaluate import run_episode

    family, seed, cfg, record = job
    return run_episode(_POLICY, family, seed, cfg, record)


def affordable(workers: int, graph_bytes: int) -> int:
    """At most `workers`, and no more than fit in half the memory available now at twice the graphs'
    file bytes each (a session holds at least the weights): tiny graphs take every core, a 7 B
    model's 30 GB of fp32 graphs one process."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX: no fork either (workers.can_fork)
        return workers
    return max(1, min(workers, int(available // 2 // max(2 * graph_bytes, 1))))


def episodes(rebuild, cfg, workers: int):
    """EpisodeResults of cfg's episodes, in order, run by `workers` processes that each open the policy
    with `rebuild()` (a picklable callable)."""
    jobs = ((family, seed, cfg, k < cfg.filmstrips) for k, (family, seed) in enumerate(cfg.episodes_list()))
    # fork: a library caller's script may lack the main guard that forkserver needs; the workers run
    # ONNX Runtime and numpy, never the torch the caller may have loaded.
    yield from ordered(_episode, jobs, workers, "fork", _open, (rebuild, cfg.ensemble))
