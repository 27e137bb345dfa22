"""The simulator's contact rules, each against a hand-worked situation, and the action convention."""

import math

import numpy as np
import pytest

from vlacompile.sim.world import BOWL_FLOOR, MAX_DELTA, Gripper, Obj, World, grasp_reach, height

OPEN, CLOSE = 1.0, 0.0


def act(dx=0.0, dy=0.0, dz=0.0, grip=OPEN, droll=0.0, dpitch=0.0, dyaw=0.0):
    return [dx, dy, dz, droll, dpitch, dyaw, grip]


def world(*objects, at=(0.0, 0.5, 0.3), closed=False):
    return World(list(objects), Gripper(*at, closed=closed))


def test_action_axes_follow_the_base_frame():
    w = world(at=(0.0, 0.5, 0.3))
    w.step(act(dx=0.04))  # +x: toward the camera, +v
    assert (w.gripper.u, w.gripper.v, w.gripper.z) == pytest.approx((0.0, 0.54, 0.3))
    w.step(act(dy=0.04, dz=-0.05))  # +y: the robot's left, the image's right (+u); +z up
    assert (w.gripper.u, w.gripper.v, w.gripper.z) == pytest.approx((0.04, 0.54, 0.25))
    w.step(act(droll=1.0, dpitch=1.0, dyaw=0.3))  # roll and pitch are ignored, yaw turns
    assert (w.gripper.u, w.gripper.v, w.gripper.z, w.gripper.yaw) == pytest.approx((0.04, 0.54, 0.25, 0.3))
    w.step(act(dx=1.0))  # one step moves at most MAX_DELTA per axis
    assert w.gripper.v == pytest.approx(0.54 + MAX_DELTA)


def test_gripper_command_is_absolute_with_a_half_threshold():
    w = world()
    w.step(act(grip=0.49))
    assert w.gripper.closed
    w.step(act(grip=0.5))
    assert not w.gripper.closed


def test_closing_at_grasp_height_near_an_object_picks_it_up():
    block = Obj("block", "red", 0.0, 0.5)
    w = world(block, at=(0.03, 0.5, 0.5 * height("block")))
    w.step(act(grip=CLOSE))
    assert block.held and w.log == [("grasp", 0)]


@pytest.mark.parametrize("where", ["above its top", "beside it", "below grasp height"])
def test_closing_elsewhere_picks_nothing(where):
    block = Obj("block", "red", 0.0, 0.5)
    at = {"above its top": (0.0, 0.5, height("block") + 0.02),
          "beside it": (grasp_reach("block") + 0.01, 0.5, 0.06),
          "below grasp height": (0.0, 0.5, 0.01)}[where]
    w = world(block, at=at)
    w.step(act(grip=CLOSE))
    assert not block.held and w.gripper.closed


def test_a_held_object_follows_and_opening_releases_it_where_it_is():
    block = Obj("block", "red", 0.0, 0.5)
    w = world(block, at=(0.0, 0.5, 0.06))
    w.step(act(grip=CLOSE))
    w.step(act(dx=0.05, dy=-0.1, dz=0.1, grip=CLOSE))
    assert (block.u, block.v, block.z) == pytest.approx((-0.1, 0.55, 0.1))  # grasped at its bottom + 0.06
    w.step(act(grip=OPEN))
    assert not block.held and (block.u, block.v, block.z) == pytest.approx((-0.1, 0.55, 0.0))  # falls to the table


def carry(w, moves, grip=CLOSE):
    for dx, dy, dz in moves:
        w.step(act(dx, dy, dz, grip))


def test_released_over_a_block_it_is_stacked_and_in_a_bowl_it_sits_on_the_floor():
    top, base, bowl = Obj("cube", "red", 0.0, 0.5), Obj("block", "blue", 0.4, 0.5), Obj("bowl", "teal", -0.4, 0.6)
    w = world(top, base, bowl, at=(0.0, 0.5, 0.07))
    w.step(act(grip=CLOSE))
    carry(w, [(0, 0, 0.1)] * 2 + [(0, 0.1, 0)] * 4)  # bottom at 0.2, above the block's top (0.13)
    w.step(act(grip=OPEN))
    assert top.z == pytest.approx(height("block")) and w.support_of(0) == 1
    w.step(act(grip=CLOSE))  # finger tips at 0.27: within the cube's height again
    assert top.held and w.support_of(0) is None
    carry(w, [(0, -0.1, 0)] * 8 + [(0.1, 0, 0)])  # over the bowl
    w.step(act(grip=OPEN))
    assert top.z == pytest.approx(BOWL_FLOOR) and w.support_of(0) == 2
    assert not base.held and base.z == 0.0


def test_a_held_object_lowered_onto_a_support_stops_on_its_top_and_stays_there_when_released():
    """The cube, carried over the block and lowered 0.2 below the block's top, stops on it (the
    gripper goes on down); beside the block (centre outside 0.9 of its radius) it goes down to the
    table. It follows the gripper up again, keeping its grasp offset."""
    cube, block = Obj("cube", "red", 0.0, 0.5), Obj("block", "blue", 0.4, 0.5)
    w = world(cube, block, at=(0.0, 0.5, 0.07))
    w.step(act(grip=CLOSE))
    carry(w, [(0, 0, 0.1)] * 2 + [(0, 0.1, 0)] * 4)  # bottom at 0.2 over the block (top 0.13)
    carry(w, [(0, 0, -0.1)] * 3)  # the gripper at -0.03 + 0.07: would put the bottom at -0.1
    assert cube.held and cube.z == pytest.approx(height("block")) and w.gripper.z == pytest.approx(0.0)
    carry(w, [(0, 0, 0.1)] * 2)
    assert cube.z == pytest.approx(0.2 - 0.07)  # the gripper at 0.2, the offset 0.07 kept
    w.step(act(grip=OPEN))
    assert cube.z == pytest.approx(height("block")) and w.support_of(0) == 1

    beside = Obj("cube", "red", 0.0, 0.5)
    w = world(beside, Obj("block", "blue", 0.4 + 0.95 * 0.085 + 0.01, 0.5), at=(0.0, 0.5, 0.07))
    w.step(act(grip=CLOSE))
    carry(w, [(0, 0, 0.1)] * 2 + [(0, 0.1, 0)] * 4 + [(0, 0, -0.1)] * 3)
    assert beside.z == 0.0


def test_a_closed_gripper_at_table_height_pushes_what_it_touches():
    block = Obj("block", "red", 0.0, 0.5)
    w = world(block, at=(-0.2, 0.5, 0.04), closed=True)
    for _ in range(3):  # the tips reach the block (footprint 0.085 + finger 0.03) on the second step
        w.step(act(dy=0.05, grip=CLOSE))  # moving right, into the block
    assert block.u == pytest.approx(0.1) and block.v == pytest.approx(0.5) and not block.held
    assert w.log and w.log[0] == ("push", 0)


@pytest.mark.parametrize("case", ["open", "above it", "moving away"])
def test_nothing_is_pushed_by_an_open_gripper_from_above_or_moving_away(case):
    block = Obj("block", "red", 0.0, 0.5)
    at = (-0.1, 0.5, height("block") + 0.05 if case == "above it" else 0.04)
    w = world(block, at=at, closed=case != "open")
    direction = -1 if case == "moving away" else 1
    for _ in range(3):
        w.step(act(dy=0.05 * direction, grip=OPEN if case == "open" else CLOSE))
    assert block.u == 0.0


def test_pushing_a_block_carries_what_is_stacked_on_it():
    base, top = Obj("block", "red", 0.0, 0.5), Obj("cube", "blue", 0.0, 0.5, z=height("block"))
    w = world(base, top, at=(-0.1, 0.5, 0.04), closed=True)
    w.step(act(dy=0.05, grip=CLOSE))
    w.step(act(dy=0.05, grip=CLOSE))
    assert top.u == pytest.approx(base.u) and w.support_of(1) == 0


def test_stepping_is_deterministic_and_rejects_bad_actions():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.1, 0.1, (30, 7))
    actions[:, 6] = rng.random(30)

    def run():
        w = world(Obj("block", "red", 0.0, 0.5), Obj("bowl", "cream", 0.3, 0.6), at=(0.0, 0.45, 0.06))
        for a in actions:
            w.step(a)
        return [(o.u, o.v, o.z, o.held) for o in w.objects], w.gripper.state.tolist()

    assert run() == run()
    with pytest.raises(ValueError):
        world().step([0.0] * 6)
    with pytest.raises(ValueError):
        world().step([math.nan] * 7)
