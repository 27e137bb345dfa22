"""Demonstrations: (image, instruction, the expert's next 16 actions) from expert episodes, and the
action statistics that normalize them.

The executed actions are perturbed so demonstrations visit the off-course states a learned policy
drifts into; the label at every state is still the expert's clean plan from that state
(expert.plan), never the perturbation:
- DART: Gaussian noise on the motion, a different scale per episode;
- mistakes, if asked for (`vlacompile train --mistakes`; none in the shipped recipe): in that share of
  the episodes, one scripted wrong grasp (`Mistake`): the gripper goes to a point off the named
  object, or to another object, descends and closes there, then the expert takes over. Learned
  policies fail exactly so (they close beside the object, or on a distractor that shares its colour
  or kind); without these episodes no demonstration shows how to reopen and try again.

Each episode draws its perturbations from its own generator (`episode_rng`: the stream's seed, the
family and the episode seed), so the frames of an episode do not depend on which episodes came
before it, and `stream` can render episodes in worker processes and still yield the same frames
in the same order.

Statistics follow CogACT / OpenVLA's dataset statistics: per action dimension mean, std, min, max,
q01 and q99 over every executed step of the demonstrations, and a mask that is False for the
gripper (it is trained on its raw 0 / 1 and only thresholded at inference).

Each frame also carries grounding targets (`grounding`): where the objects the instruction names
are relative to the gripper, and the gripper's own state. They train a throw-away head on the
cognition feature next to CogACT's objective (objective.py says why); no policy ever sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..workers import ordered
from .env import Episode
from .expert import ALIGN, AT, CLOSE, OPEN, SPEED, expert_action, plan
from .patches import named_patches, patch_labels
from .tasks import FAMILIES, SPLITS, episode_seeds

CHUNK = 16
DART_NOISE = (0.0, 0.015)  # per-episode noise scale, uniform in this range (table units per step)
MISTAKE_START = 12  # it starts at a step drawn below this (before most first grasps)
MISTAKE_STEPS = 16  # at most this many steps to reach its point before it closes anyway
MISTAKE_OFFSET = (0.08, 0.3)  # a miss lands this far (table units) from the named object's centre
STATISTICS_KEY = "vlacompile_tabletop"
GRIPPER = 6
GROUNDING_DIMS = 9
POSITION_SCALE = 3.0  # relative positions span about +-0.3 table units; this brings them to about +-1


@dataclass
class Frame:
    image: np.ndarray | None  # [224, 224, 3] uint8; None when not rendered
    instruction: str
    actions: np.ndarray  # [CHUNK, 7] float32, raw (not normalized)
    task: tuple[str, int]
    grounding: np.ndarray  # [GROUNDING_DIMS] float32, see grounding()
    state: np.ndarray  # [5] float32, the gripper's proprioception (world.Gripper.state)
    patches: np.ndarray | None = None  # [256, 5] per-patch labels (sim/patches.py) when asked for
    named: np.ndarray | None = None  # [256] uint8: 1 / 2 on the patches of the first / second named object, with them


def grounding(world, task) -> np.ndarray:
    """What the instruction points at, in the action's base frame (x = v, y = u, z up), from the
    gripper: the named object's centre (3), the second named object's centre or zeros (3), then the
    gripper's height, 1 when open, and 1 when the named object is held."""
    g = world.gripper

    def offset(i):
        if i is None:
            return [0.0, 0.0, 0.0]
        o = world.objects[i]
        return [POSITION_SCALE * d for d in (o.v - g.v, o.u - g.u, o.z + 0.5 * o.height - g.z)]

    held = float(world.objects[task.target].held)
    return np.array([*offset(task.target), *offset(task.other), POSITION_SCALE * g.z, 0.0 if g.closed else 1.0, held],
                    np.float32)


def episode_rng(seed: int, family: str, episode_seed: int) -> np.random.Generator:
    """The generator of one demonstration episode's perturbations."""
    return np.random.default_rng([seed, FAMILIES.index(family), episode_seed])


class Mistake:
    """One scripted wrong grasp, from step `start`: with probability one half the point is another
    object's centre (the wrong object), else a point MISTAKE_OFFSET from the named object's centre
    (a miss), chosen when the mistake starts. The gripper travels there keeping its jaws as they
    are, descends to grasp height (half the object's height, or just above the table for a miss),
    and closes; the expert then takes over (it reopens, or puts the wrong object down)."""

    def __init__(self, rng, start: int):
        self.rng, self.start, self.point, self.steps = rng, start, None, 0

    def _choose(self, world, task) -> tuple[float, float, float]:
        x = world.objects[task.target]
        others = [o for i, o in enumerate(world.objects) if i != task.target and not o.held]
        if others and self.rng.random() < 0.5:
            o = others[int(self.rng.integers(len(others)))]
            return o.u, o.v, o.z + 0.5 * o.height
        r, a = self.rng.uniform(*MISTAKE_OFFSET), self.rng.uniform(0, 2 * math.pi)
        return x.u + r * math.cos(a), x.v + r * math.sin(a), 0.03

    def action(self, world, task) -> np.ndarray | None:
        """The mistake's next action, or None when it is not (or no longer) in control."""
        if world.steps < self.start or self.steps < 0:
            return None
        if self.point is None:
            self.point = self._choose(world, task)
        g, (u, v, z) = world.gripper, self.point
        self.steps += 1
        arrived = math.hypot(g.u - u, g.v - v) <= ALIGN and abs(g.z - z) <= AT
        if arrived or self.steps > MISTAKE_STEPS:
            self.steps = -1  # closes once, then hands over for good
            return np.array([0, 0, 0, 0, 0, 0, CLOSE], np.float32)
        d = [float(np.clip(e, -SPEED, SPEED)) for e in (v - g.v, u - g.u, z - g.z)]
        return np.array([*d, 0, 0, 0, CLOSE if g.closed else OPEN], np.float32)


def perturbed_actions(ep: Episode, rng, noise: float | None = None, mistakes: float = 0.0):
    """The executed actions of one demonstration episode, step by step (a generator that reads
    `ep` before each step): the expert's, with DART noise and, in a `mistakes` share of the
    episodes, one mistake. Draws from `rng` in a fixed order, so an episode's perturbations depend
    on it alone."""
    noise = float(rng.uniform(*DART_NOISE)) if noise is None else noise
    mistake = Mistake(rng, int(rng.integers(MISTAKE_START))) if rng.random() < mistakes else None
    while not ep.done:
        a = mistake.action(ep.world, ep.task) if mistake else None
        if a is None:
            a = expert_action(ep.world, ep.task)
        a[:3] += rng.normal(0.0, noise, 3) if noise else 0.0
        yield a


def episode_frames(family: str, seed: int, rng, chunk: int = CHUNK, noise: float | None = None,
                   every: int = 1, render: bool = True, patches: bool = False, phase: int = 0,
                   mistakes: float = 0.0, first_only: bool = False) -> list[Frame]:
    """One demonstration episode, every `every`-th step from step `phase` as a frame (rendered unless
    `render` is False: then its image is None), with its label, and with per-patch labels if `patches`;
    `first_only`: only the first of those frames (the rest of the episode is not played)."""
    ep, frames = Episode(family, seed, render=render), []
    for a in perturbed_actions(ep, rng, noise, mistakes):
        if ep.world.steps % every == phase % every:
            obs = ep.observe()
            image = None if obs.image is None else np.array(obs.image)
            labels = patch_labels(ep.world, POSITION_SCALE) if patches else None
            frames.append(Frame(image, obs.instruction, plan(ep.world, ep.task, chunk), ep.task_id,
                                grounding(ep.world, ep.task), obs.state, labels,
                                None if labels is None else named_patches(labels, ep.world, ep.task, POSITION_SCALE)))
            if first_only:
                break
        ep.step(a)
    return frames


def _episode_job(job: tuple) -> list[Frame]:
    family, seed, stream_seed, chunk, render, patches, every, mistakes, starts = job
    phase = int(np.random.default_rng([stream_seed, FAMILIES.index(family), seed, 1]).integers(every))
    if np.random.default_rng([stream_seed, FAMILIES.index(family), seed, 2]).random() < starts:
        return episode_frames(family, seed, episode_rng(stream_seed, family, seed), chunk, render=render,
                              patches=patches, mistakes=mistakes, first_only=True)
    return episode_frames(family, seed, episode_rng(stream_seed, family, seed), chunk, every=every, render=render,
                          patches=patches, phase=phase, mistakes=mistakes)


def _episodes(seeds, stream_seed: int, chunk: int, render: bool, patches: bool, workers: int, every: int,
              mistakes: float, starts: float = 0.0):
    """Each episode's frames, in the order of `seeds`, rendered by `workers` processes (0: this one)."""
    jobs = ((family, s, stream_seed, chunk, render, patches, every, mistakes, starts) for family, s in seeds)
    yield from ordered(_episode_job, jobs, workers)


def stream(seeds, seed: int = 0, buffer: int = 1024, chunk: int = CHUNK, render: bool = True,
           patches: bool = False, workers: int = 0, reuse: int = 1, every: int = 1, mistakes: float = 0.0,
           starts: float = 0.0):
    """Frames from the episodes `seeds` in turn, shuffled through a buffer of about `buffer` frames so
    a batch mixes episodes. Each episode gives every `every`-th step (from a phase its seed draws),
    a `mistakes` share of them has one scripted mistake, and each frame is yielded `reuse` times (at random places in the buffer). `workers` processes
    render the episodes; the frames and their order do not depend on it.

    Why `every`: consecutive frames of an episode show the same scene, so a frame budget spent on
    every step of few episodes teaches a model those scenes (it learns where the named object is in
    each one) rather than how to find it in a new one. The shipped default's linear probe measured it
    (docs/BENCHMARKS.md): its grounding error on new episodes was several times its training loss.

    Why `starts` (a share of the episodes gives only its first frame): in most frames of an episode
    the gripper is at or near the named object, so a model can find it by where the gripper is; only
    the first frames ask which object the words name. A model whose pointer head gave the named
    objects 71% of its attention over its training frames gave them a third at the first frames of
    held-out episodes, as much as to the objects nobody named (sim/readout.py, docs/BENCHMARKS.md)."""
    rng = np.random.default_rng(seed)
    pool: list[Frame] = []
    episodes = _episodes(seeds, seed, chunk, render, patches, workers, every, mistakes, starts)
    exhausted = False
    while pool or not exhausted:
        while not exhausted and len(pool) < buffer:
            frames = next(episodes, None)
            if frames is None:
                exhausted = True
            else:
                pool += frames * reuse
        if pool:
            k = int(rng.integers(len(pool)))
            pool[k], pool[-1] = pool[-1], pool[k]
            yield pool.pop()


def statistics(seeds: list[tuple[str, int]], seed: int = 0, mistakes: float = 0.0) -> dict:
    """Dataset statistics of the executed actions of these demonstration episodes (no rendering), and
    of the proprioception they were taken from (OpenVLA's "proprio" entry; pi0 normalizes its state by it)."""
    actions, states = [], []
    for family, s in seeds:
        ep = Episode(family, s, render=False)
        for a in perturbed_actions(ep, episode_rng(seed, family, s), mistakes=mistakes):
            states.append(ep.world.gripper.state)
            actions.append(a)
            ep.step(a)
    a = np.stack(actions)
    mask = [True] * a.shape[1]
    mask[GRIPPER] = False
    return {STATISTICS_KEY: {"action": {**_moments(a), "mask": mask}, "proprio": _moments(np.stack(states)),
                             "num_transitions": int(a.shape[0]), "num_trajectories": len(seeds)}}


def _moments(x: np.ndarray) -> dict:
    out = {"mean": x.mean(0), "std": x.std(0), "max": x.max(0), "min": x.min(0),
           "q01": np.quantile(x, 0.01, axis=0), "q99": np.quantile(x, 0.99, axis=0)}
    return {k: [round(float(v), 6) for v in vs] for k, vs in out.items()}


def normalize(actions: np.ndarray, stats: dict) -> np.ndarray:
    """Raw actions -> the DiT's targets: masked dims mapped [q01, q99] -> [-1, 1] and clipped (as
    OpenVLA / CogACT normalize), the gripper left at its raw 0 / 1. Dims with q01 == q99 go to -1."""
    s = stats["action"]
    q01, q99, mask = (np.asarray(s[k], np.float32) for k in ("q01", "q99", "mask"))
    scaled = np.clip(2 * (actions - q01) / (q99 - q01 + 1e-8) - 1, -1, 1)
    return np.where(mask.astype(bool), scaled, actions).astype(np.float32)


def training_seeds(episodes: int, start: int = 0) -> list[tuple[str, int]]:
    return episode_seeds("train", episodes, start)


__all__ = ["CHUNK", "Frame", "GROUNDING_DIMS", "SPLITS", "STATISTICS_KEY", "episode_frames", "grounding", "normalize",
           "statistics", "stream"]
