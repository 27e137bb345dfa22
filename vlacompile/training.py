"""`vlacompile train`: a small preset trained from scratch on the simulator's demonstrations.

Demonstrations stream from expert episodes on the training seeds (each frame used once, shuffled
through a buffer), so the run needs no dataset on disk. A family's recipe may start with a vision
stage: the vision towers alone, on per-patch labels (sim/patches.py), from their own training
seeds (from VISION_SEEDS_START on); models/cogact/objective.py says why CogACT's does.

The result is a weights file in the released key layout, the dataset statistics that normalize its
actions, the loss curve (JSON and a plot) and a record of how it was made: seeds, steps, data, wall
time, final loss, code revision, and the device.

On a CUDA device the forward runs under bf16 autocast (CogACT trains in bf16 mixed precision too)
and `workers` processes render the demonstrations, since one process renders about 100 frames a
second and the GPU takes far more. `minutes` sizes the action stage to a wall-clock budget: the step
count is fitted at the end of the warm-up (whose learning rates do not depend on the total) from
the measured speed, refitted every RESIZE_EVERY steps as the speed drifts (the cosine decay then
stretches or shrinks a little), and recorded; a run that still reaches the budget stops there.
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
    device: str = "cpu"
    workers: int = 0  # processes rendering demonstrations (0: the training process itself)
    reuse: int = 1  # times each demonstration frame is trained on
    frame_every: int = 1  # one frame every this many steps of each demonstration episode (demos.stream)
    mistakes: float = 0.0  # share of demonstration episodes with one scripted wrong grasp (sim/demos.py)
    starts: float = 0.0  # share of demonstration episodes that give only their first frame (demos.stream)
    minutes: float | None = None  # wall-clock budget of the whole run; the action stage's steps fit it
    init: str | None = None  # a folder `vlacompile train` wrote: train it further instead of from scratch
    first_episode: int = 0  # the action stage's demonstrations start at this training seed


SIZING_STEPS = (50, 200)  # with `minutes`, the action stage's speed is measured from the first step on, and
RESIZE_EVERY = 100  # the step count fitted at the second, then again every this many steps (speed drifts)
SAVE_MARGIN = 20.0  # seconds kept for writing the results


def code_revision() -> str:
    """git describe of the working tree (with -dirty when it has uncommitted changes), if any; in a
    copy without .git (a rented GPU machine) the revision the copy was made from, given as
    $VLACOMPILE_REVISION."""
    import os

    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10)
        described = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        described = ""
    return described or os.environ.get("VLACOMPILE_REVISION", "unknown")


def resolved(cfg: TrainConfig, recipe) -> TrainConfig:
    """`cfg` with the recipe's step counts where it leaves them open."""
    from .errors import UserError

    steps = recipe.steps if cfg.steps is None else cfg.steps
    vision = recipe.vision_steps if cfg.vision_steps is None else cfg.vision_steps
    if vision and not recipe.patch_head:
        raise UserError(f"--vision-steps {vision}: {recipe.preset.name}'s recipe has no per-patch loss for a vision "
                        "stage to train; give --patches W (> 0) with it, or pass --vision-steps 0")
    return replace(cfg, steps=steps, vision_steps=vision)


def autocast(device: str):
    """bf16 autocast on CUDA; on the CPU plain fp32 (bf16 measured no faster here, docs/BENCHMARKS.md)."""
    import contextlib

    import torch

    return torch.autocast("cuda", torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model name and core count, for the training record."""
    import os
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


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
    """Batches of the recipe's tensors from a frame stream, on `device`; remembers which episodes it
    drew from. `make(frames)` builds a batch (default: the recipe's action batch)."""

    def __init__(self, frames, recipe, stats: dict, batch: int, device: str = "cpu", make=None):
        self.frames, self.recipe, self.stats, self.batch, self.device = frames, recipe, stats, batch, device
        self.make = make or (lambda fs: recipe.batch(fs, stats))
        self.tasks: set = set()

    def __next__(self):
        frames = [next(self.frames) for _ in range(self.batch)]
        self.tasks.update(f.task for f in frames)
        return tuple(t.to(self.device, non_blocking=True) for t in self.make(frames))

    def close(self) -> None:
        """Stops the frame stream's worker processes, if any."""
        if hasattr(self.frames, "close"):
            self.frames.close()


class Curves:
    """Per-step losses, read back from the device ten steps at a time so that the training loop does
    not wait for the GPU at every step."""

    def __init__(self, names: tuple[str, ...]):
        self.names, self.values, self._pending = names, {n: [] for n in names}, []

    def add(self, *losses) -> None:
        import torch

        self._pending.append(torch.stack([x.detach().float() for x in losses]))
        if len(self._pending) >= 10:
            self.flush()

    def flush(self) -> None:
        import torch

        if self._pending:
            for row in torch.stack(self._pending).cpu().tolist():
                for n, v in zip(self.names, row):
                    self.values[n].append(v)
            self._pending = []

    def recent(self, name: str, k: int = 50) -> float:
        v = self.values[name][-k:]
        return sum(v) / len(v)


def train(recipe, cfg: TrainConfig, out: Path, progress: bool = True, log=print, on_step=None) -> dict:
    """Train `recipe.preset` from scratch with the family's recipe (models/<family>/recipe.py); write
    its released layout (weights and statistics), RECORD, CURVE and PLOT to `out`.
    `on_step(step, model, statistics)`, if given, is called after every optimizer step."""
    import itertools

    import torch

    from .fsutil import sha256, staged_folder, write_json
    from .sim import demos
    from .sim.tasks import SPLITS, episode_seeds

    start, revision = time.perf_counter(), code_revision()  # the code the run started from
    cfg = resolved(cfg, recipe)
    torch.manual_seed(cfg.seed)
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast (optimizer, losses)
    torch.backends.cudnn.benchmark = True  # the patch embeddings' convolutions, at one fixed shape
    stats_seeds = episode_seeds("train", cfg.stats_episodes)
    stats = demos.statistics(stats_seeds, cfg.seed, cfg.mistakes)
    transitions = stats[demos.STATISTICS_KEY]["num_transitions"]
    log(f"statistics from {len(stats_seeds)} demonstration episodes ({transitions} steps)")
    model = (recipe.trained_model(Path(cfg.init)) if cfg.init else recipe.initial_model(cfg.seed)).to(cfg.device)
    heads = recipe.heads().to(cfg.device)  # thrown away at the end
    vision_curve, vision_seeds = vision_stage(recipe, model, heads, cfg, progress)
    train_seeds = episode_seeds("train", VISION_SEEDS_START - cfg.first_episode, cfg.first_episode)
    frames = demos.stream(itertools.cycle(train_seeds), cfg.seed, cfg.buffer, recipe.chunk,
                          patches=recipe.patch_labels, workers=cfg.workers, reuse=cfg.reuse, every=cfg.frame_every,
                          mistakes=cfg.mistakes, starts=cfg.starts)
    batches = Batches(frames, recipe, stats, cfg.batch, cfg.device)
    try:
        cfg, curves = action_stage(recipe, model, heads, batches, cfg, start, progress, on_step, stats, log)
    finally:
        batches.close()
    model.eval().cpu()
    episodes = sorted(batches.tasks, key=lambda t: t[1])
    curve, grounding_curve, patch_curve, pointer_curve = (curves.values[n] for n in ("eps", "grounding", "patches",
                                                                                      "pointer"))
    record = {"preset": recipe.preset.name, "config": {**asdict(cfg), "objective": asdict(recipe.objective)},
              "objective": recipe.description,
              "steps": cfg.steps, "samples": cfg.steps * cfg.batch,
              "init": _init_record(cfg.init),
              "data": {"split": "train", "statistics_episodes": [stats_seeds[0][1], stats_seeds[-1][1]],
                       "episodes_seen": len(episodes), "seeds_seen": [episodes[0][1], episodes[-1][1]],
                       "dart_noise": list(demos.DART_NOISE), "mistake_rate": cfg.mistakes,
                       "chunk": recipe.chunk, "frame_every": cfg.frame_every, "frame_reuse": cfg.reuse,
                       "first_frame_only_share": cfg.starts},
              "vision_stage": {"steps": cfg.vision_steps, "batch": cfg.vision_batch, "seeds": vision_seeds,
                               "final_patch_loss": _tail_mean(vision_curve)} if cfg.vision_steps else None,
              "final_patch_loss": _tail_mean(patch_curve),
              "final_pointer_loss": _tail_mean(pointer_curve) if recipe.objective.pointer else None,
              "final_loss": _tail_mean(curve),
              "final_grounding_loss": _tail_mean(grounding_curve),
              "wall_seconds": time.perf_counter() - start,
              "device": device_name(cfg.device), "precision": "bf16 autocast" if cfg.device.startswith("cuda") else "fp32",
              "threads": torch.get_num_threads(), "torch": torch.__version__, "code_revision": revision}
    with staged_folder(Path(out)) as tmp:
        record["weights_sha256"] = sha256(recipe.save(tmp, model, stats))
        write_json(tmp / CURVE, {"loss": curve, "grounding": grounding_curve, "patches": patch_curve,
                                 "pointer": pointer_curve, "vision_stage": vision_curve})
        plot_curve(curve, grounding_curve, tmp / PLOT, recipe.loss_label, patch_curve)
        write_json(tmp / RECORD, record)
    log(f"trained {cfg.steps} steps in {record['wall_seconds'] / 60:.1f} min, final loss {record['final_loss']:.4f}")
    return record


def _synced_clock(device: str) -> float:
    """perf_counter once the device has finished the work queued so far."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _init_record(init: str | None) -> dict | None:
    """Where a continued run started: the folder, its weights' sha256 and its own record."""
    import json

    from .fsutil import sha256

    if not init:
        return None
    folder = Path(init)
    weights = next(p for p in (folder / "weights.safetensors", folder / "model.safetensors") if p.is_file())
    record = folder / RECORD
    return {"folder": str(folder), "weights_sha256": sha256(weights),
            "record": json.loads(record.read_text()) if record.is_file() else None}


def _sized(cfg: TrainConfig, step: int, per_step: float, start: float) -> TrainConfig:
    """cfg with the action stage's steps fitted to what is left of `cfg.minutes` at `step`."""
    left = cfg.minutes * 60 - (time.perf_counter() - start) - SAVE_MARGIN
    return replace(cfg, steps=max(step + 1, min(cfg.steps, step + int(left / per_step))))


class Budget:
    """cfg.minutes as the action stage spends it (module docstring): the step count fitted from the
    speed measured since step SIZING_STEPS[0], at SIZING_STEPS[1] and every RESIZE_EVERY steps after."""

    def __init__(self, cfg: TrainConfig, start: float):
        self.minutes, self.device, self.start, self.timer = cfg.minutes, cfg.device, start, None

    def fitted(self, cfg: TrainConfig, step: int) -> TrainConfig:
        if not self.minutes:
            return cfg
        if step == SIZING_STEPS[0]:
            self.timer = _synced_clock(self.device)
        if step >= SIZING_STEPS[1] and (step - SIZING_STEPS[1]) % RESIZE_EVERY == 0:
            per_step = (_synced_clock(self.device) - self.timer) / (step - SIZING_STEPS[0])
            return _sized(cfg, step, per_step, self.start)
        return cfg

    def spent(self, step: int) -> bool:
        """Whether the run must stop before `step` to leave SAVE_MARGIN for writing its results."""
        return bool(self.minutes and step and time.perf_counter() - self.start > self.minutes * 60 - SAVE_MARGIN)


def action_stage(recipe, model, heads, batches: Batches, cfg: TrainConfig, start: float, progress: bool, on_step,
                 stats, log=print) -> tuple[TrainConfig, Curves]:
    """The recipe's loss on demonstration batches for cfg.steps steps (fitted to cfg.minutes if set);
    -> (the config as run, the loss curves)."""
    import torch
    from tqdm import tqdm

    opt = Optimizer([*model.parameters(), *heads.parameters()], cfg)
    g = torch.Generator(cfg.device).manual_seed(cfg.seed + 1)
    curves, budget, step = Curves(("eps", "grounding", "patches", "pointer")), Budget(cfg, start), 0
    with tqdm(total=cfg.steps, desc="train", unit="step", disable=not progress) as bar:
        while step < cfg.steps:
            cfg = budget.fitted(cfg, step)
            opt.cfg, bar.total = cfg, cfg.steps
            if budget.spent(step):
                log(f"the {cfg.minutes} minute budget ran out at step {step} of {cfg.steps}: stopped there")
                cfg = replace(cfg, steps=step)
                break
            with autocast(cfg.device):
                loss, eps, ground, *extra = recipe.loss(model, heads, next(batches), g)
            opt.update(step, loss)
            curves.add(eps, ground, *extra)  # both families: the patch and pointer losses (0 when off)
            step += 1
            bar.update()
            if on_step is not None:
                on_step(step, model, stats)
            if step % 10 == 0:  # the curves have just been read back
                pointer = f" pointer {curves.recent('pointer'):.3f}" if recipe.objective.pointer else ""
                bar.set_postfix_str(f"loss {curves.recent('eps'):.4f} grounding {curves.recent('grounding'):.4f}{pointer}")
    curves.flush()
    for name in ("patches", "pointer"):  # a term that is off has no curve
        if not getattr(recipe.objective, name):
            curves.values[name] = []
    return cfg, curves


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
    frames = demos.stream(itertools.cycle(seeds), cfg.seed + 2, cfg.buffer, recipe.chunk, patches=True,
                          workers=cfg.workers, reuse=cfg.reuse, every=cfg.frame_every, mistakes=cfg.mistakes)
    batches = Batches(frames, recipe, {}, cfg.vision_batch, cfg.device, make=recipe.vision_batch)
    schedule = replace(cfg, steps=cfg.vision_steps, warmup=max(cfg.vision_steps // 10, 1))
    opt = Optimizer([*recipe.vision_parameters(model), *heads["patches"].parameters()], schedule)
    curves = Curves(("patches",))
    try:
        with tqdm(range(cfg.vision_steps), desc="vision stage", unit="step", disable=not progress) as bar:
            for step in bar:
                with autocast(cfg.device):
                    loss = recipe.vision_loss(model, heads, next(batches))
                opt.update(step, loss)
                curves.add(loss)
                if step % 10 == 9:  # the curve has just been read back
                    bar.set_postfix_str(f"patch loss {curves.recent('patches'):.4f}")
    finally:
        batches.close()
    curves.flush()
    used = [s for _, s in batches.tasks]
    return curves.values["patches"], [min(used), max(used)]


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
