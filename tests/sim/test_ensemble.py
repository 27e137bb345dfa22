import math

import numpy as np
import pytest

from vlacompile.sim.ensemble import AdaptiveEnsemble


class Scripted:
    """A policy that returns the chunks it is given, in turn."""

    name, noise_shape = "scripted", (1, 16, 7)

    def __init__(self, chunks):
        self.chunks = iter(chunks)

    def __call__(self, image, instruction, noise, state=None):
        return next(self.chunks)


def chunk(*rows):
    out = np.zeros((16, 7), np.float32)
    out[:len(rows)] = rows
    return out


def test_the_ensemble_averages_the_last_predictions_for_this_step_by_hand():
    """Horizon 2, alpha 0.1: step 0 executes the first prediction's row 0 as it is; step 1 averages
    the first prediction's row 1 (a = [1, 0, ...]) and the second's row 0 (b = [1, 1, ...]), whose
    cosine is 1/sqrt(2), with weights exp(0.1 x 1/sqrt(2)) and exp(0.1 x 1) normalized."""
    a, b = [1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]
    first = chunk([0, 0, 1, 0, 0, 0, 1], a)
    second = chunk(b, [9, 9, 9, 9, 9, 9, 9])
    ensemble = AdaptiveEnsemble(Scripted([first, second]), horizon=2, alpha=0.1)
    assert np.allclose(ensemble(None, "", None)[0], first[0])
    out = ensemble(None, "", None)
    wa, wb = math.exp(0.1 / math.sqrt(2)), math.exp(0.1)
    expected = (wa * np.array(a) + wb * np.array(b)) / (wa + wb)
    assert np.allclose(out[0], expected, atol=1e-6)
    assert np.array_equal(out[1:], second[1:])  # only the executed row is ensembled


def test_agreeing_predictions_change_nothing_and_an_episode_starts_afresh():
    same = chunk(*[[0.1 * i, 0.2, -0.3, 0, 0, 0.05, 1] for i in range(16)])
    shifted = np.roll(same, -1, axis=0)  # the next prediction agrees with the previous one's plan
    ensemble = AdaptiveEnsemble(Scripted([same, shifted, same]), horizon=2)
    ensemble(None, "", None)
    assert np.allclose(ensemble(None, "", None)[0], shifted[0])
    ensemble.reset(None)
    assert np.allclose(ensemble(None, "", None)[0], same[0])  # no history from the last episode


def test_the_ensemble_needs_one_executed_action_per_prediction():
    from vlacompile.errors import UserError
    from vlacompile.sim.evaluate import EvalConfig

    with pytest.raises(UserError, match="--ensemble 2 averages one action per prediction; pass --execute 1"):
        EvalConfig(episodes=2, execute=4, ensemble=2).episodes_list()
    assert len(EvalConfig(episodes=2, execute=1, ensemble=2).episodes_list()) == 2
