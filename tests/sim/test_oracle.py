"""The perfect-perception diagnostic: its condition is the true task state, its perception error is
what it says, and its action head learns from the demonstrations with the default's objective."""

import numpy as np
import pytest
import torch

from vlacompile.models.cogact.objective import Objective
from vlacompile.sim.demos import GROUNDING_DIMS, episode_frames, grounding
from vlacompile.sim.env import Episode
from vlacompile.sim.oracle import DIMS, NOISY, Oracle, OraclePolicy, condition, frame_condition


def test_the_condition_is_family_direction_and_grounding():
    ground = np.arange(GROUNDING_DIMS, dtype=np.float32)
    v = condition("push", -1, ground)
    assert v.shape == (DIMS,) == (5 + 1 + 9,)
    assert v[:5].tolist() == [0, 0, 1, 0, 0]  # pick, put, push, near, stack
    assert v[5] == -1 and v[6:].tolist() == ground.tolist()


def test_frames_carry_the_same_labels_unrendered_and_their_condition_reads_the_instruction():
    rendered = episode_frames("push", 11, np.random.default_rng(0))
    bare = episode_frames("push", 11, np.random.default_rng(0), render=False)
    assert len(rendered) == len(bare) and bare[0].image is None and rendered[0].image.shape == (224, 224, 3)
    for a, b in zip(rendered, bare):
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.grounding, b.grounding)
    ep = Episode("push", 11, render=False)
    direction = -1 if "left" in ep.task.instruction else 1
    assert direction == ep.task.direction
    np.testing.assert_array_equal(frame_condition(bare[0]), condition("push", ep.task.direction, bare[0].grounding))


def test_perception_error_is_persistent_bias_plus_fresh_noise_on_positions_only():
    oracle = Oracle()
    exact, biased = OraclePolicy(oracle, {}), OraclePolicy(oracle, {}, bias=0.2)
    ep = Episode("near", 3, render=False)
    exact.reset(ep)
    biased.reset(ep)
    truth = condition("near", 0, grounding(ep.world, ep.task))
    np.testing.assert_array_equal(exact.perceived(), truth)
    first, second = biased.perceived() - truth, biased.perceived() - truth
    np.testing.assert_allclose(first, second, atol=1e-6)  # no per-call noise: the same offset every re-plan
    assert np.abs(first[6:6 + NOISY]).max() > 0.01 and not first[6 + NOISY:].any() and not first[:6].any()


def test_a_few_steps_lower_the_oracle_loss_on_a_small_set():
    from vlacompile.sim.demos import normalize, statistics
    from vlacompile.sim.tasks import episode_seeds

    stats = statistics(episode_seeds("train", 20))["vlacompile_tabletop"]
    frames = episode_frames("pick", 5, np.random.default_rng(0), render=False)[:8]
    conditions = torch.from_numpy(np.stack([frame_condition(f) for f in frames]))
    actions = torch.from_numpy(np.stack([normalize(f.actions, stats) for f in frames]))
    oracle, objective = Oracle(seed=1), Objective(repeats=4, cond_drop=0.0)

    def loss():  # the same diffusion steps and noise every time: only the weights change
        with torch.no_grad():
            return float(oracle.loss(conditions, actions, objective, torch.Generator().manual_seed(0)))

    before = loss()
    opt = torch.optim.AdamW(oracle.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(7)
    for _ in range(15):
        opt.zero_grad()
        oracle.loss(conditions, actions, objective, g).backward()
        opt.step()
    assert before == pytest.approx(1.0, abs=0.2)  # the zero-initialized head predicts no noise
    assert loss() < 0.7 * before


@pytest.mark.parametrize("module, args, names", [
    ("vlacompile.sim.oracle", ["abc"], "STEPS"),
    ("vlacompile.sim.oracle", ["10", "999999"], "--episodes 999999"),
    ("vlacompile.sim.openloop", ["0"], "EPISODES"),
    ("vlacompile.sim", ["5", "6"], "at most 1"),
    ("vlacompile.sim.readout", ["--model", "calib_data"], "--model calib_data: no weights.safetensors"),
    ("vlacompile.sim.readout", ["--model"], "--model needs a folder"),
    ("vlacompile.sim.probe", ["--model", "calib_data"], "--model calib_data: no weights.safetensors"),
    ("vlacompile.sim.openloop", ["--model", "calib_data", "5"], "--model calib_data: not a folder"),
])
def test_the_diagnostics_refuse_bad_counts_in_one_line(module, args, names):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and names in out.stderr
    assert "Traceback" not in out.stderr
