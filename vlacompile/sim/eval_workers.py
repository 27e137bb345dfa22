"""A policy's episodes spread over worker processes (`vlacompile eval --workers`, `build`'s closed loop).

Every episode draws its scene and its noise from its own seeds, so what a worker process changes is
only the thread count its policy computes with (one each: the processes share the cores).
- **fp32 graphs on ONNX Runtime:** its CPU kernels gave bit-identical outputs at one and two intra-op
  threads on each of the embedded default's three graphs, so the episodes are the same, step for step
  (tests/sim/test_eval_workers.py; 100 episodes, docs/BENCHMARKS.md).
- **PyTorch (the reference, a rewritten model):** a worker computes the inherited model on one thread,
  so its episodes are this process's at one thread, step for step (the test). At two threads the
  numbers move by about 1e-7: on the embedded default's first 100 held-out episodes every episode
  kept its success, length, number of predictions and outcome (33 differed in the 7th digit of a
  recorded distance); of 400, one changed its outcome (317 successes against 318); in one of the
  test's four, a failed episode closed on its target at one thread and beside it at two. pi0-tiny's
  first 50 were the same to the last digit. A machine with another core count moves them the same
  way in one process; one thread per worker does not depend on it.
- **fp16 graphs** stay in the calling process: on the same 100 episodes at one and at two threads, 74
  differed in some step and 12 in their outcome (6 each way; 70% both times). TensorRT's engines stay
  with the one process that holds the device.
On a 2-core CPU two processes of one thread each ran the fp32 graphs' episodes in 55% of the time of
one process of two threads, and the reference's in 61-66% (100 episodes, `vlacompile eval`: 53-58 s
against 87 s): the tiny models keep two threads poorly busy, and drawing the camera image takes one core.
"""

from __future__ import annotations

import os

from ..workers import one_torch_thread, ordered

_POLICY = None  # this worker's policy, opened once by _open


def _open(rebuild, ensemble: int) -> None:
    global _POLICY
    from ..backends import onnxruntime

    onnxruntime.THREADS = 1  # one per process: the processes share the cores
    one_torch_thread()  # a PyTorch policy computes with the caller's torch
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
    with `rebuild()` (inherited through fork, with everything it refers to)."""
    jobs = ((family, seed, cfg, k < cfg.filmstrips) for k, (family, seed) in enumerate(cfg.episodes_list()))
    # fork: a library caller's script may lack the main guard that forkserver needs, and a PyTorch policy
    # is inherited rather than reloaded (its workers set one thread each in _open, as PyTorch's own
    # DataLoader workers do after a fork).
    yield from ordered(_episode, jobs, workers, "fork", _open, (rebuild, cfg.ensemble))
