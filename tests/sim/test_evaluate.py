"""Closed-loop evaluation: counting, intervals, the protocol, and the same noise for every policy."""

import numpy as np
import pytest

from vlacompile.errors import UserError
from vlacompile.sim.evaluate import EvalConfig, evaluate, wilson
from vlacompile.sim.expert import plan
from vlacompile.sim.tasks import STEP_LIMIT


class Oracle:
    """Peeks at the episode (through the reset hook) and answers with the expert's plan."""

    noise_shape = (1, 16, 7)

    def __init__(self):
        self.noises = {}  # (episode seed, re-plan) -> the noise it was given

    def reset(self, episode):
        self.episode, self.call = episode, 0

    def __call__(self, image, instruction, noise, state=None):
        assert image.size == (224, 224) and instruction == self.episode.task.instruction
        self.noises[self.episode.task.seed, self.call] = noise
        self.call += 1
        return self.act()

    def act(self):
        return plan(self.episode.world, self.episode.task, 16)


class Still(Oracle):
    def act(self):
        return np.tile([0, 0, 0, 0, 0, 0, 1.0], (16, 1))


def test_wilson_interval_by_hand():
    # 8 of 10: p = 0.8, z = 1.96: centre (0.8 + 0.192) / 1.384 = 0.7168, half 0.2265
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson(0, 5)[0] == 0.0 and wilson(0, 5)[1] == pytest.approx(0.4345, abs=1e-4)
    assert wilson(5, 5)[1] == 1.0


def test_the_expert_as_a_policy_succeeds_and_doing_nothing_fails():
    cfg = EvalConfig(episodes=10, execute=4)
    expert = evaluate(Oracle(), cfg, progress=False)["summary"]
    assert expert["overall"]["success_rate"] == 1.0 and expert["overall"]["outcomes"] == {"success": 10}
    assert set(expert["families"]) == {"pick", "put", "push", "near", "stack"}
    still = evaluate(Still(), cfg, progress=False)["summary"]
    assert still["overall"]["successes"] == 0
    assert still["overall"]["outcomes"] == {"pushed nothing": 2, "never closed": 8}  # it never moves nor closes
    assert still["overall"]["mean_steps"] == pytest.approx(np.mean([STEP_LIMIT[f] for f in still["families"]]))


def test_every_policy_gets_the_same_noise_at_the_same_replan():
    a, b = Oracle(), Still()
    cfg = EvalConfig(episodes=3, families=("put",), execute=8)
    evaluate(a, cfg, progress=False)
    evaluate(b, cfg, progress=False)
    common = set(a.noises) & set(b.noises)
    assert len(common) >= 6 and all(np.array_equal(a.noises[k], b.noises[k]) for k in common)
    first, second = sorted(common)[:2]
    assert not np.array_equal(a.noises[first], a.noises[second])


def test_filmstrips_hold_the_frames_of_the_first_episodes():
    res = evaluate(Oracle(), EvalConfig(episodes=2, filmstrips=1), progress=False)
    [(result, frames)] = res["filmstrips"]
    assert result.success and frames[0][0] == 0 and frames[-1][0] == result.steps


@pytest.mark.parametrize("cfg, message", [(EvalConfig(episodes=0), "empty or out-of-range"),
                                         (EvalConfig(start=99_990, episodes=20), "empty or out-of-range"),
                                         (EvalConfig(families=("juggle",)), "unknown task family")])
def test_bad_ranges_and_families_are_refused(cfg, message):
    with pytest.raises(UserError, match=message):
        cfg.episodes_list()
