"""Demonstrations: (image, instruction, the expert's next 16 actions) from expert episodes, and the
action statistics that normalize them.

The executed actions are perturbed (DART: Gaussian noise on the motion, a different scale per
episode) so demonstrations visit the off-course states a learned policy drifts into; the label at
every state is still the expert's clean plan from that state (expert.plan), never the noise.

Statistics follow CogACT / OpenVLA's dataset statistics: per action dimension mean, std, min, max,
q01 and q99 over every executed step of the demonstrations, and a mask that is False for the
gripper (it is trained on its raw 0 / 1 and only thresholded at inference).

Each frame also carries grounding targets (`grounding`): where the objects the instruction names
are relative to the gripper, and the gripper's own state. They train a throw-away head on the
cognition feature next to CogACT's objective (objective.py says why); no policy ever sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .env import Episode
from .expert import expert_action, plan
from .patches import patch_labels
from .tasks import SPLITS, episode_seeds

CHUNK = 16
DART_NOISE = (0.0, 0.015)  # per-episode noise scale, uniform in this range (table units per step)
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


def episode_frames(family: str, seed: int, rng, chunk: int = CHUNK, noise: float | None = None,
                   every: int = 1, render: bool = True, patches: bool = False) -> list[Frame]:
    """One demonstration episode, every `every`-th step as a frame (rendered unless `render` is False:
    then its image is None), with its label, and with per-patch labels if `patches`."""
    noise = float(rng.uniform(*DART_NOISE)) if noise is None else noise
    ep, frames = Episode(family, seed, render=render), []
    while not ep.done:
        if ep.world.steps % every == 0:
            obs = ep.observe()
            image = None if obs.image is None else np.array(obs.image)
            frames.append(Frame(image, obs.instruction, plan(ep.world, ep.task, chunk), ep.task_id,
                                grounding(ep.world, ep.task), obs.state,
                                patch_labels(ep.world, POSITION_SCALE) if patches else None))
        a = expert_action(ep.world, ep.task)
        a[:3] += rng.normal(0.0, noise, 3) if noise else 0.0
        ep.step(a)
    return frames


def stream(seeds: list[tuple[str, int]], seed: int = 0, buffer: int = 1024, chunk: int = CHUNK, render: bool = True,
           patches: bool = False):
    """Frames from the episodes `seeds` in turn, shuffled through a buffer of about `buffer` frames so
    a batch mixes episodes. Each frame is yielded once."""
    rng = np.random.default_rng(seed)
    pool: list[Frame] = []
    episodes = iter(seeds)
    exhausted = False
    while pool or not exhausted:
        while not exhausted and len(pool) < buffer:
            nxt = next(episodes, None)
            if nxt is None:
                exhausted = True
            else:
                pool += episode_frames(*nxt, rng, chunk, render=render, patches=patches)
        if pool:
            k = int(rng.integers(len(pool)))
            pool[k], pool[-1] = pool[-1], pool[k]
            yield pool.pop()


def statistics(seeds: list[tuple[str, int]], seed: int = 0) -> dict:
    """Dataset statistics of the executed actions of these demonstration episodes (no rendering), and
    of the proprioception they were taken from (OpenVLA's "proprio" entry; pi0 normalizes its state by it)."""
    rng, actions, states, lengths = np.random.default_rng(seed), [], [], []
    for family, s in seeds:
        ep = Episode(family, s, render=False)
        noise = float(rng.uniform(*DART_NOISE))
        while not ep.done:
            states.append(ep.world.gripper.state)
            a = expert_action(ep.world, ep.task)
            a[:3] += rng.normal(0.0, noise, 3)
            actions.append(a)
            ep.step(a)
        lengths.append(ep.world.steps)
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
