"""Demonstrations: the frames a training run sees do not depend on how many processes render them,
each is seen as often as asked, and the scripted mistakes put the robot where learned policies
fail, with the expert's recovery as the label."""

import math

import numpy as np

from vlacompile.sim.demos import MISTAKE_OFFSET, Mistake, episode_rng, perturbed_actions, stream
from vlacompile.sim.env import Episode
from vlacompile.sim.expert import ALIGN, AT, OPEN, expert_action
from vlacompile.sim.tasks import episode_seeds


def _signature(frame) -> tuple:
    return frame.task, frame.actions.tobytes(), frame.image.tobytes(), frame.state.tobytes()


def test_worker_processes_render_the_same_frames_in_the_same_order():
    seeds = episode_seeds("train", 4, 300)
    alone = [_signature(f) for f in stream(seeds, seed=5, buffer=16)]
    parallel = [_signature(f) for f in stream(seeds, seed=5, buffer=16, workers=2)]
    assert len(alone) > 60 and parallel == alone


def test_reuse_yields_every_frame_that_many_times():
    seeds = episode_seeds("train", 2, 40)
    once = [id(f) for f in stream(seeds, seed=1, buffer=8, render=False)]
    frames = list(stream(seeds, seed=1, buffer=8, render=False, reuse=3))
    counts = {}
    for f in frames:
        counts[id(f)] = counts.get(id(f), 0) + 1
    assert len(frames) == 3 * len(once) and set(counts.values()) == {3}


def test_an_episodes_frames_depend_on_its_own_seed_only():
    """The same episode rendered after different predecessors carries the same actions and images
    (the shuffle buffer may order them differently)."""
    seeds = episode_seeds("train", 3, 70)
    first = [f for f in stream(seeds, seed=2, buffer=1) if f.task == seeds[2]]
    later = [f for f in stream(seeds[2:], seed=2, buffer=1) if f.task == seeds[2]]
    assert len(first) > 10 and sorted(map(_signature, first)) == sorted(map(_signature, later))


class _Miss:
    """A generator stand-in that makes Mistake choose a miss at a known offset and angle."""

    def random(self):
        return 0.9  # >= 0.5: not another object

    def uniform(self, low, high):
        return low if high == MISTAKE_OFFSET[1] else 0.0  # offset 0.08, angle 0: to the target's right


def test_a_miss_closes_beside_the_named_object_and_the_expert_reopens():
    ep = Episode("pick", 200_003, render=False)
    target = ep.world.objects[ep.task.target]
    mistake = Mistake(_Miss(), start=0)
    while True:
        a = mistake.action(ep.world, ep.task)
        ep.step(a)
        if a[6] < 0.5:
            break
    g = ep.world.gripper
    assert g.closed and ep.world.held() is None  # closed on nothing
    assert math.hypot(g.u - (target.u + MISTAKE_OFFSET[0]), g.v - target.v) <= ALIGN + 1e-6
    assert abs(g.z - 0.03) <= AT + 1e-6  # just above the table
    assert mistake.action(ep.world, ep.task) is None  # handed over for good
    assert expert_action(ep.world, ep.task)[6] == OPEN  # the label: reopen, then try again


def test_a_wrong_object_mistake_grasps_it_and_the_expert_puts_it_down():
    class Wrong(_Miss):
        def random(self):
            return 0.1  # < 0.5: another object

        def integers(self, n):
            return 0

    ep = Episode("pick", 200_003, render=False)
    other = next(i for i in range(len(ep.world.objects)) if i != ep.task.target)
    mistake = Mistake(Wrong(), start=0)
    for _ in range(40):
        a = mistake.action(ep.world, ep.task)
        if a is None:
            break
        ep.step(a)
    assert ep.world.held() == other
    assert expert_action(ep.world, ep.task)[6] == OPEN


def _first_close(family: str, seed: int, mistakes: float):
    """Where the gripper first closes in a pick episode: (holding the target, holding anything)."""
    ep = Episode(family, seed, render=False)
    for a in perturbed_actions(ep, episode_rng(0, family, seed), noise=0.0, mistakes=mistakes):
        was_open = not ep.world.gripper.closed
        ep.step(a)
        if was_open and ep.world.gripper.closed:
            return ep.world.held() == ep.task.target, ep.world.held() is not None
    return None


def test_mistakes_are_asked_for_and_then_every_such_episode_first_closes_off_the_target():
    seeds = [("pick", s) for _, s in episode_seeds("train", 12, 900)]
    assert all(_first_close(f, s, mistakes=0.0)[0] for f, s in seeds)  # the expert grasps the target first
    assert not any(_first_close(f, s, mistakes=1.0)[0] for f, s in seeds)


def test_start_episodes_give_their_first_frame_only_from_the_start_position():
    """--starts 1: one frame per episode, the scene as reset (where the expert's plan starts); 0:
    the episodes as before; a share in between picks the same episodes whatever their order."""
    seeds = episode_seeds("train", 12, 500)
    starts = list(stream(seeds, seed=3, buffer=1, render=False, starts=1.0))
    assert sorted(f.task for f in starts) == sorted(seeds)
    for f in starts:
        ep = Episode(*f.task, render=False)
        np.testing.assert_array_equal(f.state, ep.world.gripper.state)
    assert len(list(stream(seeds, seed=3, buffer=1, render=False, starts=0.0))) > 10 * len(seeds)
    some = {f.task for f in stream(seeds, seed=3, buffer=1, render=False, starts=0.5)
            if sum(1 for g in stream([f.task], seed=3, render=False, starts=0.5)) == 1}
    assert 0 < len(some) < len(seeds)
    assert some == {f.task for f in stream(seeds[::-1], seed=3, buffer=1, render=False, starts=0.5)
                    if sum(1 for g in stream([f.task], seed=3, render=False, starts=0.5)) == 1}
