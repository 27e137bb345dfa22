"""Closed-loop success: run policies on held-out episodes of the benchmark and count what they solve.

Protocol. At each re-plan the policy sees the camera image and the instruction and predicts a
16-step action chunk (un-normalized, gripper thresholded, as it would drive a robot); the first
`execute` actions are applied, then it re-plans. An episode ends at success or at its family's
step limit. Every policy compared runs the same episodes (same seeds, so the same scenes) and
draws the same initial diffusion noise at the same re-plan (seeded by episode and call number), so
a difference in success comes from the policy, not from luck.

CogACT's adaptive action ensemble (sim/ensemble.py) is off by default: it needs a prediction at
every step (`execute` 1), which multiplies the cost of an evaluation by 4; `ensemble` N turns it on
over the last N predictions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import UserError
from .env import Episode
from .outcomes import episode_outcome, first_miss, tally
from .tasks import FAMILIES, SPLITS, check_family

Z95 = 1.959964


@dataclass(frozen=True)
class EvalConfig:
    episodes: int = 100
    families: tuple[str, ...] = FAMILIES
    split: str = "eval"
    start: int = 0  # offset into the split's seeds
    execute: int = 4  # actions executed per predicted chunk
    noise_seed: int = 0
    filmstrips: int = 0  # how many episodes (the first ones) keep their frames
    ensemble: int = 0  # CogACT's adaptive action ensemble over this many predictions; 0: none (needs execute 1)

    def episodes_list(self) -> list[tuple[str, int]]:
        for f in self.families:
            check_family(f)
        if not self.families:
            raise UserError("no task family chosen; give at least one of " + ", ".join(FAMILIES))
        if self.split not in SPLITS:
            raise UserError(f"unknown seed split {self.split!r}; choose from {', '.join(SPLITS)}")
        if self.ensemble and self.execute != 1:
            raise UserError(f"--ensemble {self.ensemble} averages one action per prediction; pass --execute 1 with it")
        seeds = SPLITS[self.split]
        if self.episodes < 1 or self.start < 0 or self.start + self.episodes > len(seeds):
            raise UserError(f"--episodes {self.episodes} from --start {self.start} is an empty or out-of-range seed "
                            f"range; the {self.split} split has seeds for {len(seeds)} episodes")
        return [(self.families[i % len(self.families)], seeds[self.start + i]) for i in range(self.episodes)]


def episode_noise(seed: int, episode_seed: int, call: int, shape) -> np.ndarray:
    """The initial diffusion noise of one re-plan: the same for every policy compared."""
    return np.random.default_rng([seed, episode_seed, call]).standard_normal(shape, dtype=np.float32)


@dataclass
class EpisodeResult:
    family: str
    seed: int
    instruction: str
    success: bool
    steps: int
    calls: int
    outcome: str = ""  # how it ended (outcomes.py)
    first_miss: dict | None = None  # the first close on nothing, against the named object (outcomes.Miss)
    frames: list = field(default_factory=list, repr=False)  # (step, PIL image) at each re-plan and the end


def run_episode(policy, family: str, seed: int, cfg: EvalConfig, record: bool = False) -> EpisodeResult:
    """`policy(image, instruction, noise, state=...) -> [chunk, 7]` un-normalized actions. A policy that keeps
    state across calls (an action ensemble, a frame cache) may define `reset(episode)`: it is called
    when each episode starts."""
    ep, calls, frames = Episode(family, seed), 0, []
    if hasattr(policy, "reset"):
        policy.reset(ep)
    while not ep.done:
        obs = ep.observe()
        if record:
            frames.append((ep.world.steps, obs.image))
        chunk = policy(obs.image, obs.instruction, episode_noise(cfg.noise_seed, seed, calls, policy.noise_shape),
                       state=obs.state)
        calls += 1
        for action in chunk[:cfg.execute]:
            if ep.step(action) or ep.done:
                break
    if record:
        frames.append((ep.world.steps, ep.observe().image))
    return result_of(ep, calls, frames)


def result_of(ep: Episode, calls: int, frames: list | None = None) -> EpisodeResult:
    """The record of a finished episode."""
    return EpisodeResult(ep.task.family, ep.task.seed, ep.task.instruction, ep.succeeded, ep.world.steps, calls,
                         episode_outcome(ep), first_miss(ep), frames or [])


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return 0.0, 1.0
    p, z2 = successes / n, Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(results: list[EpisodeResult]) -> dict:
    """Success per family and overall, with 95% intervals, mean episode length, and how many episodes
    ended each way (outcomes.py)."""
    def block(rs):
        k = sum(r.success for r in rs)
        low, high = wilson(k, len(rs))
        return {"episodes": len(rs), "successes": k, "success_rate": k / len(rs) if rs else 0.0,
                "ci95": [low, high], "mean_steps": float(np.mean([r.steps for r in rs])) if rs else 0.0,
                "outcomes": tally([r.outcome for r in rs])}

    families = sorted({r.family for r in results}, key=FAMILIES.index)
    return {"overall": block(results), "families": {f: block([r for r in results if r.family == f]) for f in families}}


def evaluate(policy, cfg: EvalConfig, progress: bool = True, desc: str = "eval", workers: int = 1) -> dict:
    """{"config", "summary", "episodes": [...]}, and "filmstrips" (lists of PIL frames) when asked.
    `workers` > 1: a policy that can be reopened elsewhere (`policy.rebuild`: fp32 graphs on ONNX
    Runtime, PyTorch on the CPU) runs its episodes in that many processes (sim/eval_workers.py); any
    other runs here."""
    from tqdm import tqdm

    from .eval_workers import affordable, episodes as run_elsewhere
    from ..workers import can_fork

    episodes = cfg.episodes_list()
    rebuild = getattr(policy, "rebuild", None) if can_fork() else None
    workers = affordable(workers, policy.graph_bytes) if rebuild is not None else 1
    if workers > 1:
        runs = run_elsewhere(rebuild, cfg, workers)
    else:
        if cfg.ensemble:
            from .ensemble import AdaptiveEnsemble

            policy = AdaptiveEnsemble(policy, cfg.ensemble)
        runs = (run_episode(policy, family, seed, cfg, record=k < cfg.filmstrips)
                for k, (family, seed) in enumerate(episodes))
    results = []
    with tqdm(runs, total=len(episodes), desc=desc, unit="episode", disable=not progress) as bar:
        for result in bar:
            results.append(result)
            bar.set_postfix_str(f"success {sum(r.success for r in results) / len(results):.0%}")
    episodes = [{k: v for k, v in asdict(r).items() if k != "frames"} for r in results]
    return {"config": {**asdict(cfg), "families": list(cfg.families)}, "summary": summarize(results),
            "episodes": episodes, "filmstrips": [(r, r.frames) for r in results if r.frames]}
