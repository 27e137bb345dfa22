"""The task suite, the expert, and the camera."""

import numpy as np
import pytest

from vlacompile.errors import UserError
from vlacompile.sim.env import Episode, run_expert
from vlacompile.sim.expert import plan
from vlacompile.sim.tasks import FAMILIES, SPLITS, Task, episode_seeds, make_episode
from vlacompile.sim.world import Gripper, Obj, World


def test_seed_splits_are_disjoint():
    ranges = list(SPLITS.values())
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            assert not set(a) & set(b)


@pytest.mark.parametrize("family", FAMILIES)
def test_scenes_are_random_with_a_confusable_distractor(family):
    layouts = set()
    for seed in range(40):
        world, task = make_episode(family, seed)
        names = [o.name for o in world.objects]
        assert 2 <= len(names) <= 4 and len(set(names)) == len(names)
        target = world.objects[task.target]
        assert target.name in task.instruction
        others = [o for i, o in enumerate(world.objects) if i not in (task.target, task.other)]
        assert any(o.kind == target.kind or o.colour == target.colour for o in others), names
        layouts.add((tuple(names), round(target.u, 3)))
        assert not task.success(world)
    assert len(layouts) == 40


def test_episodes_are_deterministic_per_seed():
    a, b = Episode("stack", 7), Episode("stack", 7)
    assert a.task == b.task
    assert np.array_equal(np.asarray(a.observe().image), np.asarray(b.observe().image))
    assert not np.array_equal(np.asarray(a.observe().image), np.asarray(Episode("stack", 8).observe().image))


def test_the_camera_shows_the_gripper_move():
    ep = Episode("pick", 3)
    before = np.asarray(ep.observe().image, np.int16)
    ep.step([0.05, 0.0, -0.05, 0, 0, 0, 1.0])
    after = np.asarray(ep.observe().image, np.int16)
    assert before.shape == (224, 224, 3)
    assert 50 < (np.abs(after - before).sum(axis=2) > 30).sum() < 224 * 224 // 4


def test_the_expert_solves_at_least_98_percent_of_held_out_episodes():
    episodes = episode_seeds("eval", 250)
    solved = [run_expert(family, seed).succeeded for family, seed in episodes]
    assert np.mean(solved) >= 0.98


def test_a_plan_is_what_the_expert_executes_and_holds_still_after_success():
    ep = Episode("pick", 1, render=False)
    chunk = plan(ep.world, ep.task, 16)
    for a in chunk:
        if ep.done:
            break
        ep.step(a)
    long = plan(make_episode("pick", 1)[0], ep.task, 60)
    assert chunk.shape == (16, 7) and np.allclose(long[:16], chunk)
    assert ep.succeeded or ep.world.steps == 16
    assert np.allclose(long[-1][:6], 0.0)  # done long before 60 steps: no motion


def test_success_predicates_by_hand():
    block, bowl = Obj("block", "red", 0.0, 0.5), Obj("bowl", "cream", 0.5, 0.5)
    world = World([block, bowl], Gripper(0.0, 0.2, 0.3))
    push = Task("push", 0, "push the red block to the right", 0, direction=1, start_u=0.0)
    block.u = 0.24
    assert not push.success(world)
    block.u = 0.26
    assert push.success(world)
    block.lifted = True  # carried there, not pushed
    assert not push.success(world)
    near = Task("near", 0, "move the red block near the cream bowl", 0, other=1)
    block.u = 0.5 - 0.17 - 0.085 - 0.09  # 0.09 of table between the footprints
    assert near.success(world)
    block.u -= 0.02
    assert not near.success(world)
    put = Task("put", 0, "put the red block into the cream bowl", 0, other=1)
    block.u, block.z = 0.5, 0.03
    assert put.success(world)


def test_bad_seed_ranges_and_families_are_one_line_errors():
    with pytest.raises(UserError, match="unknown task family"):
        make_episode("juggle", 0)
    with pytest.raises(UserError, match="do not fit"):
        episode_seeds("eval", 0)
