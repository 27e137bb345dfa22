"""The condition map's fit frames: rendered by worker processes, they are the frames this process
renders, in the same order (the stored reference vectors are keyed by their pixels)."""

import numpy as np

from vlacompile.sim.calib_set import benchmark_frames


def _signature(s) -> tuple:
    return s.instruction, s.episode, s.step, s.state, np.asarray(s.image).tobytes()


def test_worker_processes_render_the_same_fit_frames_in_the_same_order():
    alone = [_signature(s) for s in benchmark_frames(5, first=40, workers=0)]
    pooled = [_signature(s) for s in benchmark_frames(5, first=40, workers=2)]
    assert len(alone) == 20 and len({a[1] for a in alone}) == 5 and pooled == alone
