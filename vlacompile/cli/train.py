from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click


@click.command()
@click.option("--preset", default="cogact-tiny", show_default=True,
              help="The preset trained from scratch (its dimensions; small presets only): cogact-tiny "
                   "(CogACT's diffusion objective), pi0-tiny (flow matching) or pi0-tiny-wide (pi0-tiny with "
                   "a 64-wide expert; from a pi0-tiny --init it grows that model).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Optimizer steps (default: the shipped run's).")
@click.option("--vision-steps", type=click.IntRange(0), default=None,
              help="Steps of the vision stage before the action objective (default: the recipe's; 0 skips it).")
@click.option("--batch", type=click.IntRange(1), default=None, help="Frames per step (default: the shipped run's).")
@click.option("--vision-batch", type=click.IntRange(1), default=None, help="Frames per vision-stage step.")
@click.option("--buffer", type=click.IntRange(1), default=None,
              help="Frames shuffled together (default: the shipped run's); larger with --reuse.")
@click.option("--temperature-draws", type=click.FloatRange(0, 1), default=None,
              help="pi0: share of the (t, noise) draws whose noise is scaled by the preset's sampling temperature "
                   "(pi0-tiny's 0), so training sees the flow the sampler follows [default: 0, pi0's objective].")
@click.option("--pointer", type=click.FloatRange(0), default=None,
              help="Weight of the pointer loss on the attention of the policy's summary token (CogACT: the "
                   "cognition token at a few LLM layers; pi0: the expert's state token at a few expert layers): head 0 "
                   "on the object named first, head 1 on the second (default: the recipe's, 0 for both shipped runs).")
@click.option("--readout-layers", default=None, metavar="I,J,..",
              help="LLM layers whose input at the cognition token gets a grounding head of its own (CogACT; "
                   "default: none, the final feature only), e.g. 2,8,16 after the pointer layers.")
@click.option("--patches", type=click.FloatRange(0), default=None,
              help="Weight of the per-patch loss on the visual tokens (what kind and colour each patch shows, and "
                   "where); needed by --vision-steps (default: the recipe's: CogACT 1, pi0 0).")
@click.option("--layer-drop", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Probability that each LLM layer is skipped at a training step (LayerDrop; CogACT; default: the "
                   "recipe's, 0).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Peak learning rate of AdamW.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the initialization, the demonstrations' order and noise, and the diffusion draws.")
@click.option("--threads", type=click.IntRange(1), default=None, help="PyTorch CPU threads (default: PyTorch's).")
@click.option("--device", default="cpu", show_default=True,
              help="Where to train: cpu, or cuda / cuda:N (bf16 autocast there).")
@click.option("--workers", type=click.IntRange(0), default=None,
              help="Processes rendering demonstrations beside the training one (default 0: the training process "
                   "renders them; on 2 cores one more process slows training more than it saves; a GPU needs many, "
                   "as one renders about 100 frames a second). The frames do not depend on it.")
@click.option("--reuse", type=click.IntRange(1), default=1, show_default=True,
              help="Times each demonstration frame is trained on.")
@click.option("--frame-every", type=click.IntRange(1), default=None,
              help="One frame every this many steps of each demonstration episode (default: the shipped run's, 1): "
                   "more scenes for the same frames.")
@click.option("--mistakes", type=click.FloatRange(0, 1), default=None,
              help="Share of demonstration episodes with one scripted wrong grasp that the expert recovers from "
                   "(default: the shipped run's).")
@click.option("--starts", type=click.FloatRange(0, 1), default=None,
              help="Share of demonstration episodes that give only their first frame, where only the words say "
                   "which object (default: the shipped run's, 0).")
@click.option("--minutes", type=click.FloatRange(0, min_open=True), default=None,
              help="Wall-clock budget: the action stage's step count (at most --steps) is fitted to it from the "
                   "speed of its first steps, and recorded in training.json.")
@click.option("--init", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Train further a model `vlacompile train` wrote (that folder) instead of starting from scratch; "
                   "its record is kept in the new one. A pi0 folder with a narrower expert than --preset's is "
                   "grown into it first (models/pi0/widen.py).")
@click.option("--first-episode", type=click.IntRange(0, 49_999), default=0, show_default=True,
              help="The first training seed of the action stage's demonstrations (a continued run takes fresh ones).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for weights, statistics, loss curve and training record [default: train/PRESET].")
def train(preset, steps, vision_steps, batch, vision_batch, buffer, temperature_draws, pointer, readout_layers, patches,
          layer_drop, lr, seed, threads, device, workers, reuse, frame_every, mistakes, starts, minutes, init,
          first_episode, out):
    """Train a small preset from scratch on the simulator's expert demonstrations.

    This is how the embedded models were made: `make train-default` and `make train-pi0` run, in
    order, the `train` commands that made the default and pi0-tiny (each model's training.json
    nests every stage's record).
    """
    import torch

    from ..training import train as run

    if threads:
        torch.set_num_threads(threads)
    check_device(device)
    recipe, cfg = planned(preset, steps=steps, vision_steps=vision_steps, batch=batch, vision_batch=vision_batch,
                          buffer=buffer, pointer=pointer, readout_layers=readout_layers, patches=patches,
                          layer_drop=layer_drop, temperature_draws=temperature_draws, lr=lr, seed=seed, device=device,
                          workers=workers, reuse=reuse, frame_every=frame_every, mistakes=mistakes, starts=starts,
                          minutes=minutes, init=init, first_episode=first_episode)
    out = out or Path("train") / preset
    record = run(recipe, cfg, out, log=click.echo)
    click.echo(f"wrote {out}/ (weights, statistics, loss.json, loss.png, training.json); "
               f"final loss {record['final_loss']:.4f}")


def planned(preset, pointer, readout_layers, patches, layer_drop, seed, device, reuse, init, first_episode,
            temperature_draws=None, **given):
    """The recipe and TrainConfig a `train` command line asks for (also what tests/test_make_train.py
    checks the Makefile's training targets against the shipped records with)."""
    from ..models import training_recipe
    from ..training import TrainConfig

    recipe = training_recipe(preset)
    if pointer is not None:
        recipe = with_objective(recipe, "--pointer", "pointer loss", pointer=pointer)
    if readout_layers is not None:
        recipe = with_readout(recipe, readout_layers)
    if patches is not None:
        recipe = with_objective(recipe, "--patches", "per-patch loss", patches=patches)
    if layer_drop is not None:
        recipe = with_objective(recipe, "--layer-drop", "LayerDrop", layer_drop=layer_drop)
    if temperature_draws is not None:
        recipe = with_objective(recipe, "--temperature-draws", "sampling temperature", "pi0's",
                                temperature_draws=temperature_draws)
    cfg = replace(TrainConfig(seed=seed, device=device, reuse=reuse, first_episode=first_episode,
                              init=str(init) if init else None),
                  **{k: v for k, v in given.items() if v is not None})
    return recipe, cfg


def check_device(device: str) -> None:
    import torch

    from ..errors import UserError

    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise UserError(f"--device {device}: train on cpu or cuda (cuda:N for another GPU)")
    if not torch.cuda.is_available():
        raise UserError(f"--device {device}: this PyTorch sees no CUDA GPU ({torch.__version__}); train with --device cpu")


def with_objective(recipe, flag: str, what: str, owner: str = "CogACT's", **fields):
    """The recipe with its objective's `fields` replaced; a one-line error where the family's
    objective has no such field (pi0's recipe lacks CogACT's readout and LayerDrop terms)."""
    from ..errors import UserError

    if not all(hasattr(recipe.objective, k) for k in fields):
        raise UserError(f"{flag}: {recipe.preset.name}'s recipe has no {what} (it is {owner})")
    return replace(recipe, objective=replace(recipe.objective, **fields))


def with_readout(recipe, layers: str):
    """--readout-layers "2,8,16": each an LLM layer index in 1..layers-1 (the input of layer 0 is the
    embeddings alone; the last layer's output is the cognition feature the grounding head reads)."""
    from ..errors import UserError

    if not hasattr(recipe.objective, "readout_layers"):
        raise UserError(f"--readout-layers: {recipe.preset.name}'s recipe has no grounding readout (it is CogACT's)")
    top = recipe.preset.llm.layers - 1
    try:
        chosen = tuple(sorted({int(v) for v in layers.split(",") if v.strip()}))
    except ValueError:
        chosen = ()
    if not chosen or not all(1 <= i <= top for i in chosen):
        raise UserError(f"--readout-layers {layers!r}: give comma-separated LLM layer indices from 1 to {top}, "
                        "e.g. 2,8,16")
    return replace(recipe, objective=replace(recipe.objective, readout_layers=chosen))
