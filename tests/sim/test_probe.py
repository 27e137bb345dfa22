"""The cognition probe: its regression is exact where the answer is linear, and its binding count
asks which object the probed position is nearest."""

import numpy as np

from vlacompile.sim.demos import POSITION_SCALE
from vlacompile.sim.env import Episode
from vlacompile.sim.probe import fit, nearest_is_named, predict


def test_the_ridge_fit_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    w = rng.normal(size=(6, 3))
    y = x @ w + np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(predict(fit(x, y, ridge=1e-9), x), y, atol=1e-6)


def test_the_binding_count_asks_which_object_the_probed_position_is_nearest():
    ep = Episode("put", 200_001, render=False)
    g = ep.world.gripper
    offset = [POSITION_SCALE * np.array([o.v - g.v, o.u - g.u]) for o in ep.world.objects]
    assert nearest_is_named(offset[ep.task.target] + 0.01, "put", 200_001)
    other = next(i for i in range(len(offset)) if i != ep.task.target)
    assert not nearest_is_named(offset[other], "put", 200_001)
