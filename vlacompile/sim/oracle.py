"""Perfect perception: the action head conditioned on the true task state, trained and run closed loop.

A diagnostic of the benchmark and of the default's training, not a policy anyone deploys. The
trained `cogact-tiny` solves few held-out episodes (docs/BENCHMARKS.md); this separates what its
VLM fails to perceive from what the action head, the 16-step chunk and the execution protocol
cannot do. The condition replaces the VLM's cognition feature with what a perfect VLM would encode:
the task family, the push direction, and the grounding targets the default's training regresses
(demos.grounding: where the named objects are from the gripper, its height, open, holding). A small
MLP maps it to the cognition width; a fresh DiT of the default's shape is trained on the same
demonstrations with the same objective (eps-MSE, 32 noise draws, condition dropout), then run
through `evaluate` on the held-out episodes.

`OraclePolicy` can add perception error to the condition's positions and the gripper height, in
grounding units (table units x demos.POSITION_SCALE): `bias`, drawn once per episode (a persistent
mislocation), plus `sigma`, drawn at every re-plan. It answers how good perception must be.

    python -m vlacompile.sim.oracle [STEPS] [EPISODES]     # 1500 steps, 100 episodes: 13 min on 2 cores
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import numpy as np

from .demos import GROUNDING_DIMS, STATISTICS_KEY, grounding, normalize
from .tasks import FAMILIES, SPLITS, episode_seeds

DIMS = len(FAMILIES) + 1 + GROUNDING_DIMS
NOISY = 7  # grounding entries that perception error touches: two 3-d positions and the gripper height
ERRORS = ((0.0, 0.0), (0.1, 0.0), (0.2, 0.0), (0.3, 0.0), (0.05, 0.1), (0.1, 0.2))  # (sigma, bias)


def condition(family: str, direction: int, ground: np.ndarray) -> np.ndarray:
    """[DIMS]: the family one-hot, the push direction (-1 left, +1 right, 0 otherwise), the grounding."""
    v = np.zeros(DIMS, np.float32)
    v[FAMILIES.index(family)] = 1.0
    v[len(FAMILIES)] = direction
    v[len(FAMILIES) + 1:] = ground
    return v


def frame_condition(frame) -> np.ndarray:
    """A demonstration frame's condition (its direction read from the instruction, as a VLM must)."""
    family = frame.task[0]
    direction = (-1 if "left" in frame.instruction else 1) if family == "push" else 0
    return condition(family, direction, frame.grounding)


class Oracle:
    """The DiT of a fresh `preset` model and the MLP that feeds it the condition."""

    def __init__(self, preset: str = "cogact-tiny", seed: int = 0):
        import torch

        from ..models.cogact.build import from_state, state_shapes
        from ..models.cogact.config import PRESETS
        from ..models.cogact.objective import initial_state

        cfg = PRESETS[preset]
        torch.manual_seed(seed)
        self.model = from_state(cfg, initial_state(state_shapes(preset), cfg, seed), "initialization")
        width = cfg.llm.hidden
        self.cond = torch.nn.Sequential(torch.nn.Linear(DIMS, 2 * width), torch.nn.SiLU(),
                                        torch.nn.Linear(2 * width, width))

    def parameters(self):
        return [*self.model.action_model.net.parameters(), *self.cond.parameters()]

    def loss(self, conditions, actions, objective, g):
        """eps-MSE of the DiT given conditions [B, DIMS] and normalized actions [B, 16, 7]."""
        from ..models.cogact.objective import eps_loss

        return eps_loss(self.model, self.cond(conditions), actions, objective, g)

    def sample(self, condition_vector: np.ndarray, noise: np.ndarray) -> np.ndarray:
        import torch

        from ..models.cogact.sampler import sample_actions

        with torch.no_grad():
            z = self.cond(torch.from_numpy(condition_vector)[None])
            return sample_actions(self.model.action_model.net, z, torch.from_numpy(noise),
                                  self.model.cfg.sampler)[0].numpy()


def train(steps: int = 1500, seed: int = 0, progress: bool = True) -> tuple[Oracle, dict, list[float]]:
    """The oracle trained as `vlacompile train` trains the default (batch 16, AdamW, warm-up and cosine
    decay, 3e-3 as measured for a DiT alone); -> (oracle, statistics, loss curve)."""
    import torch
    from tqdm import tqdm

    from ..models.cogact.objective import Objective
    from ..training import Optimizer, TrainConfig
    from . import demos

    cfg = replace(TrainConfig(seed=seed), steps=steps, lr=3e-3, warmup=min(200, max(steps // 10, 1)))
    stats = demos.statistics(episode_seeds("train", cfg.stats_episodes), seed)
    oracle = Oracle(seed=seed)
    oracle.model.action_model.train()
    opt = Optimizer(oracle.parameters(), cfg)
    frames = demos.stream(itertools.cycle(episode_seeds("train", len(SPLITS["train"]))), seed, cfg.buffer,
                          oracle.model.cfg.dit.chunk, render=False)
    g, curve = torch.Generator().manual_seed(seed + 1), []
    with tqdm(range(steps), desc="oracle", unit="step", disable=not progress) as bar:
        for step in bar:
            batch = [next(frames) for _ in range(cfg.batch)]
            conditions = torch.from_numpy(np.stack([frame_condition(f) for f in batch]))
            actions = torch.from_numpy(np.stack([normalize(f.actions, stats[STATISTICS_KEY]) for f in batch]))
            loss = oracle.loss(conditions, actions, Objective(), g)
            opt.update(step, loss)
            curve.append(loss.item())
    oracle.model.eval()
    return oracle, stats, curve


class OraclePolicy:
    """evaluate's policy interface over an Oracle: it reads the episode's true state at each re-plan."""

    def __init__(self, oracle: Oracle, stats: dict, sigma: float = 0.0, bias: float = 0.0):
        from ..runtime.postprocess import DEFAULT

        self.oracle, self.stats, self.sigma, self.bias, self.postprocess = oracle, stats, sigma, bias, DEFAULT
        dit = oracle.model.cfg.dit
        self.noise_shape = (1, dit.chunk, dit.action_dim)

    def reset(self, episode) -> None:
        self.episode = episode
        self.rng = np.random.default_rng(episode.task.seed)  # the same errors for every oracle compared
        self.offset = self.rng.normal(0.0, self.bias, NOISY).astype(np.float32)

    def perceived(self) -> np.ndarray:
        """The condition a VLM with this much error would give now."""
        ep = self.episode
        ground = grounding(ep.world, ep.task)
        ground[:NOISY] += self.offset + self.rng.normal(0.0, self.sigma, NOISY).astype(np.float32)
        return condition(ep.task.family, ep.task.direction, ground)

    def __call__(self, image, instruction: str, noise: np.ndarray, state=None) -> np.ndarray:
        from ..runtime.postprocess import unnormalize

        return unnormalize(self.oracle.sample(self.perceived(), noise), self.stats[STATISTICS_KEY], self.postprocess)


def main(argv: list[str]) -> None:
    from .evaluate import EvalConfig, evaluate

    from .args import counts

    steps, episodes = counts(argv, ("steps", "episodes"), (1500, 100))
    EvalConfig(episodes=episodes).episodes_list()  # refuse a bad episode count before training
    start = time.perf_counter()
    oracle, stats, curve = train(steps)
    print(f"trained {steps} steps in {(time.perf_counter() - start) / 60:.1f} min, "
          f"final eps loss {np.mean(curve[-100:]):.4f} (mean of the last 100 steps)")
    for sigma, bias in ERRORS:
        s = evaluate(OraclePolicy(oracle, stats, sigma, bias), EvalConfig(episodes=episodes), progress=False)["summary"]
        o = s["overall"]
        families = ", ".join(f"{f} {b['success_rate']:.0%}" for f, b in s["families"].items())
        print(f"perception error sigma {sigma:.2f} bias {bias:.2f}: {o['success_rate']:.0%} "
              f"[{o['ci95'][0]:.0%}, {o['ci95'][1]:.0%}] of {episodes} ({families}), mean {o['mean_steps']:.1f} steps")


if __name__ == "__main__":
    from .args import run

    run(main)
