"""How an episode ended: each outcome from a hand-made scene, driven through Episode.step as a policy
would drive it (so the failed closes are recorded where evaluation records them)."""

import pytest

from vlacompile.sim.env import Episode
from vlacompile.sim.outcomes import episode_outcome
from vlacompile.sim.tasks import Task
from vlacompile.sim.world import Gripper, Obj, World, grasp_reach, height

OPEN, CLOSE = 1.0, 0.0
REACH, TALL = grasp_reach("block"), height("block")  # 0.75 * 0.085 + 0.03 = 0.094; the block's height


def scene(family: str, at: tuple, closed: bool = False) -> Episode:
    """A red block (named first, at u 0) and a blue one (named second, at u 0.6), both at v 0.5; the gripper
    at `at` (u, v, z)."""
    ep = Episode(family, 0, render=False)
    ep.world = World([Obj("block", "red", 0.0, 0.5), Obj("block", "blue", 0.6, 0.5)], Gripper(*at, closed=closed))
    ep.task = Task(family, 0, "hand-made", target=0, other=1, direction=1, start_u=0.0)
    ep.succeeded = False
    return ep


def step(ep: Episode, du=0.0, dz=0.0, grip=OPEN) -> None:
    ep.step([0.0, du, dz, 0.0, 0.0, 0.0, grip])  # x (v), y (u), z, roll, pitch, yaw, gripper


def test_a_close_beside_the_named_object_is_a_sideways_miss_measured_in_its_reach():
    ep = scene("pick", at=(2 * REACH, 0.5, 0.5 * TALL))
    step(ep, grip=CLOSE)
    assert episode_outcome(ep) == "missed it sideways"
    [m] = ep.misses
    assert m.nearest_is_target and m.reaches == pytest.approx(2.0) and m.height == 0


def test_a_close_within_reach_but_above_it_is_a_miss_in_height():
    ep = scene("put", at=(0.5 * REACH, 0.5, TALL + 0.05))
    step(ep, grip=CLOSE)
    assert episode_outcome(ep) == "missed it in height"
    assert ep.misses[0].reaches == pytest.approx(0.5) and ep.misses[0].height == 1


def test_a_close_over_the_other_block_is_counted_against_the_other_block():
    ep = scene("stack", at=(0.6, 0.5, TALL + 0.05))  # above the blue block: no grasp
    step(ep, grip=CLOSE)
    assert episode_outcome(ep) == "closed near another object"
    assert not ep.misses[0].nearest_is_target and ep.misses[0].reaches == pytest.approx(0.6 / REACH)


def test_grasps_decide_before_misses():
    ep = scene("pick", at=(2 * REACH, 0.5, 0.5 * TALL))
    step(ep, grip=CLOSE)  # a miss first
    while ep.world.gripper.u < 0.6 - 1e-9:  # open, over to the blue block (0.1 a step at most)
        step(ep, du=min(0.1, 0.6 - ep.world.gripper.u))
    step(ep, grip=CLOSE)  # now over the blue block at grasp height
    assert ep.world.held() == 1 and episode_outcome(ep) == "grasped another object"

    ep = scene("pick", at=(0.0, 0.5, 0.5 * TALL))
    step(ep, grip=CLOSE)
    step(ep, grip=OPEN)  # held, then let go on the table
    assert ep.misses == [] and episode_outcome(ep) == "grasped it, did not finish"


def test_push_episodes_are_judged_by_what_was_pushed():
    ep = scene("push", at=(-0.2, 0.5, 0.04), closed=True)
    for _ in range(3):  # the tips reach the block on the second step and push it 0.1 right, not 0.25
        step(ep, du=0.05, grip=CLOSE)
    assert episode_outcome(ep) == "pushed it too little"
    assert episode_outcome(scene("push", at=(0.0, 0.5, 0.3))) == "pushed nothing"


def test_a_gripper_that_never_closes_never_closed():
    ep = scene("near", at=(0.0, 0.5, 0.3))
    step(ep, dz=-0.1)
    assert episode_outcome(ep) == "never closed"
