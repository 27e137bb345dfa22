"""`vlacompile train`: a small preset trained from scratch on the simulator's demonstrations.

Demonstrations stream from expert episodes on the training seeds (each frame used once, shuffled
through a buffer), so the run needs no dataset on disk. A family's recipe may start with a vision
stage: the vision towers alone, on per-patch labels (sim/patches.py), from their own training
seeds (from VISION_SEEDS_START on); models/cogact/objective.py says why CogACT's does.

The result is a weights file in the released key layout, the dataset statistics that normalize its
actions, the loss curve (JSON and a plot) and a record of how it was made: seeds, steps, data, wall
time, final loss, code revision.
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

RECORD, CURVE, PLOT = "training.json", "loss.json", "loss.png"


VISION_SEEDS_START = 50_000  # the vision stage's episodes: training seeds far past the ~1,200 the action stage reads


@dataclass(frozen=True)
class TrainConfig:
    steps: int | None = None  # None: the recipe's (what fits 60 minutes on the 2-core CPU here)
    vision_steps: int | None = None  # None: the recipe's; 0 skips the vision stage
    vision_batch: int = 32
    batch: int = 16
    lr: float = 2e-3
    warmup: int = 200
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * this
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    stats_episodes: int = 1000  # demonstration episodes the action statistics come from
    buffer: int = 2048  # frames shuffled together


def code_revision() -> str:
    """git describe of the working tree (with -dirty when it has uncommitted changes), if any."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def resolved(cfg: TrainConfig, recipe) -> TrainConfig:
    """`cfg` with the recipe's step counts where it leaves them open."""
    from .errors import UserError

    steps = recipe.steps if cfg.steps is None else cfg.steps
    vision = recipe.vision_steps if cfg.vision_steps is None else cfg.vision_steps
    if vision and not recipe.patch_labels:
        raise UserError(f"--vision-steps {vision}: {recipe.preset.name}'s recipe has no vision stage; pass 0")
    return replace(cfg, steps=steps, vision_steps=vision)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class Optimizer:
    """AdamW as every training run here uses it: the schedule's learning rate at each step (cfg's
    steps, warm-up and decay), gradients clipped to cfg.grad_clip."""

    def __init__(self, params, cfg: TrainConfig):
        import torch

        self.params, self.cfg = list(params), cfg
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)

    def update(self, step: int, loss) -> None:
        import torch

        for group in self.opt.param_groups:
            group["lr"] = learning_rate(step, self.cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()


class Batches:
    """Batches of the recipe's tensors from a frame stream; remembers which episodes it drew from."""

    def __init__(self, frames, recipe, stats: dict, batch: int):
        self.frames, self.recipe, self.stats, self.batch = frames, recipe, stats, batch
        self.tasks: set = set()

    def __next__(self):
        frames = [next(self.frames) for _ in range(self.batch)]
        self.tasks.update(f.task for f in frames)
        return self.recipe.batch(frames, self.stats)


def train(recipe, cfg: TrainConfig, out: Path, progress: bool = True, log=print, on_step=None) -> dict:
    """Train `recipe.preset` from scratch with the family's recipe (models/<family>/recipe.py); write
    its released layout (weights and statistics), RECORD, CURVE and PLOT to `out`.
    `on_step(step, model, statistics)`, if given, is called after every optimizer step."""
    import itertools

    import torch
    from tqdm import tqdm

    from .fsutil import sha256, staged_folder, write_json
    from .sim import demos
    from .sim.tasks import SPLITS, episode_seeds

    start, revision = time.perf_counter(), code_revision()  # the code the run started from
    cfg = resolved(cfg, recipe)
    torch.manual_seed(cfg.seed)
    stats_seeds = episode_seeds("train", cfg.stats_episodes)
    stats = demos.statistics(stats_seeds, cfg.seed)
    transitions = stats[demos.STATISTICS_KEY]["num_transitions"]
    log(f"statistics from {len(stats_seeds)} demonstration episodes ({transitions} steps)")
    model = recipe.initial_model(cfg.seed)
    train_seeds = episode_seeds("train", len(SPLITS["train"]))
    heads = recipe.heads()  # thrown away at the end
    vision_curve, vision_seeds = vision_stage(recipe, model, heads, cfg, progress)
    frames = demos.stream(itertools.cycle(train_seeds), cfg.seed, cfg.buffer, recipe.chunk,
                          patches=recipe.patch_labels)
    batches = Batches(frames, recipe, stats, cfg.batch)
    opt = Optimizer([*model.parameters(), *heads.parameters()], cfg)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    curve, grounding_curve, patch_curve = [], [], []
    with tqdm(range(cfg.steps), desc="train", unit="step", disable=not progress) as bar:
        for step in bar:
            loss, eps, ground, *dense = recipe.loss(model, heads, next(batches), g)
            opt.update(step, loss)
            curve.append(eps.item())
            grounding_curve.append(ground.item())
            patch_curve += [d.item() for d in dense]
            if on_step is not None:
                on_step(step + 1, model, stats)
            if step % 10 == 0:
                bar.set_postfix_str(f"loss {sum(curve[-50:]) / len(curve[-50:]):.4f} "
                                    f"grounding {sum(grounding_curve[-50:]) / len(grounding_curve[-50:]):.4f}")
    model.eval()
    episodes = sorted(batches.tasks, key=lambda t: t[1])
    record = {"preset": recipe.preset.name, "config": {**asdict(cfg), "objective": asdict(recipe.objective)},
              "objective": recipe.description,
              "steps": cfg.steps, "samples": cfg.steps * cfg.batch,
              "data": {"split": "train", "statistics_episodes": [stats_seeds[0][1], stats_seeds[-1][1]],
                       "episodes_seen": len(episodes), "seeds_seen": [episodes[0][1], episodes[-1][1]],
                       "dart_noise": list(demos.DART_NOISE), "chunk": recipe.chunk},
              "vision_stage": {"steps": cfg.vision_steps, "batch": cfg.vision_batch, "seeds": vision_seeds,
                               "final_patch_loss": _tail_mean(vision_curve)} if cfg.vision_steps else None,
              "final_patch_loss": _tail_mean(patch_curve),
              "final_loss": _tail_mean(curve),
              "final_grounding_loss": _tail_mean(grounding_curve),
              "wall_seconds": time.perf_counter() - start,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "code_revision": revision}
    with staged_folder(Path(out)) as tmp:
        record["weights_sha256"] = sha256(recipe.save(tmp, model, stats))
        write_json(tmp / CURVE, {"loss": curve, "grounding": grounding_curve, "patches": patch_curve,
                                 "vision_stage": vision_curve})
        plot_curve(curve, grounding_curve, tmp / PLOT, recipe.loss_label, patch_curve)
        write_json(tmp / RECORD, record)
    log(f"trained {cfg.steps} steps in {record['wall_seconds'] / 60:.1f} min, final loss {record['final_loss']:.4f}")
    return record


def _tail_mean(curve: list[float]) -> float | None:
    return sum(curve[-100:]) / len(curve[-100:]) if curve else None


def vision_stage(recipe, model, heads, cfg: TrainConfig, progress: bool = True) -> tuple[list[float], list[int]]:
    """Train the recipe's vision parameters (and the patch head) alone on per-patch labels, for
    `cfg.vision_steps` steps of `cfg.vision_batch` frames; -> (loss per step, [first, last] seed)."""
    import itertools

    from tqdm import tqdm

    from .sim import demos
    from .sim.tasks import SPLITS

    if not cfg.vision_steps:
        return [], []
    seeds = demos.training_seeds(len(SPLITS["train"]) - VISION_SEEDS_START, VISION_SEEDS_START)
    frames = demos.stream(itertools.cycle(seeds), cfg.seed + 2, cfg.buffer, recipe.chunk, patches=True)
    schedule = replace(cfg, steps=cfg.vision_steps, warmup=max(cfg.vision_steps // 10, 1))
    opt = Optimizer([*recipe.vision_parameters(model), *heads["patches"].parameters()], schedule)
    curve, used = [], []
    with tqdm(range(cfg.vision_steps), desc="vision stage", unit="step", disable=not progress) as bar:
        for step in bar:
            batch = [next(frames) for _ in range(cfg.vision_batch)]
            used += [f.task[1] for f in batch]
            loss = recipe.vision_loss(model, heads, batch)
            opt.update(step, loss)
            curve.append(loss.item())
            if step % 10 == 0:
                bar.set_postfix_str(f"patch loss {sum(curve[-50:]) / len(curve[-50:]):.4f}")
    return curve, [min(used), max(used)]


def plot_curve(curve: list[float], grounding: list[float], path: Path, label: str = "eps-prediction MSE",
               patches: list[float] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    steps = np.arange(len(curve))
    ax.plot(steps, curve, color="#b0c4de", lw=0.6, label=f"{label}, per step")
    k = min(100, len(curve))
    ax.plot(steps[k - 1:], np.convolve(curve, np.ones(k) / k, mode="valid"), color="#2b6cb0",
            label=f"{label}, mean of {k}")
    if grounding:
        ax.plot(steps[k - 1:], np.convolve(grounding, np.ones(k) / k, mode="valid"), color="#c05621",
                label=f"grounding MSE (head not shipped), mean of {k}")
    if patches:
        ax.plot(steps[k - 1:], np.convolve(patches, np.ones(k) / k, mode="valid"), color="#6b8e23",
                label=f"per-patch loss (head not shipped), mean of {k}")
    ax.set(xlabel="optimizer step", ylabel="loss", yscale="log", title="Training loss")
    ax.legend()
    fig.savefig(path, format="png")
