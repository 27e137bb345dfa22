"""An episode of the benchmark: its world, its task, its camera; step it with 7-dof actions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import Camera
from .outcomes import Miss, miss
from .tasks import FAMILIES, Task, make_episode
from .world import World


@dataclass
class Observation:
    image: object  # PIL RGB image, 224 x 224
    instruction: str
    state: np.ndarray  # gripper x, y, z, yaw, open (world.Gripper.state)
    step: int


class Episode:
    """`render=False` skips the camera (the expert and the tests of the rules need no pixels)."""

    def __init__(self, family: str, seed: int, render: bool = True):
        self.world, self.task = make_episode(family, seed)
        self.start: World = self.world.clone()
        look = int(np.random.SeedSequence([FAMILIES.index(family), seed, 1]).generate_state(1)[0])
        self.camera = Camera(look) if render else None
        self.succeeded = self.task.success(self.world)
        self.misses: list[Miss] = []  # each close on nothing, against the named object (outcomes.py)

    @property
    def task_id(self) -> tuple[str, int]:
        return self.task.family, self.task.seed

    @property
    def done(self) -> bool:
        return self.succeeded or self.world.steps >= self.task.step_limit

    def observe(self) -> Observation:
        image = self.camera.render(self.world) if self.camera is not None else None
        return Observation(image, self.task.instruction, self.world.gripper.state, self.world.steps)

    def step(self, action) -> bool:
        """Apply one action; True once the task has succeeded (the episode then ends)."""
        if self.done:
            raise RuntimeError("the episode is over")
        was_closed = self.world.gripper.closed
        self.world.step(action)
        if self.world.gripper.closed and not was_closed and self.world.held() is None:
            self.misses.append(miss(self.world, self.task.target))
        self.succeeded = self.task.success(self.world)
        return self.succeeded


def run_expert(family: str, seed: int, noise: float = 0.0, rng=None) -> Episode:
    """The expert's episode, optionally with its executed actions perturbed (not rendered)."""
    from .expert import expert_action

    ep = Episode(family, seed, render=False)
    while not ep.done:
        a = expert_action(ep.world, ep.task)
        if noise:
            a = a.copy()
            a[:3] += rng.normal(0.0, noise, 3)
        ep.step(a)
    return ep


__all__ = ["Episode", "Observation", "Task", "run_expert"]
