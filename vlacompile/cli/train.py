from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--preset", default="cogact-tiny", show_default=True,
              help="The preset trained from scratch (its dimensions; small presets only, on a CPU): cogact-tiny "
                   "(CogACT's diffusion objective) or pi0-tiny (flow matching).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Optimizer steps (default: the shipped run's).")
@click.option("--vision-steps", type=click.IntRange(0), default=None,
              help="Steps of the vision stage before the action objective (default: the recipe's; 0 skips it).")
@click.option("--batch", type=click.IntRange(1), default=None, help="Frames per step (default: the shipped run's).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Peak learning rate of AdamW.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the initialization, the demonstrations' order and noise, and the diffusion draws.")
@click.option("--threads", type=click.IntRange(1), default=None, help="PyTorch CPU threads (default: PyTorch's).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for weights, statistics, loss curve and training record [default: train/PRESET].")
def train(preset, steps, vision_steps, batch, lr, seed, threads, out):
    """Train a small preset from scratch on the simulator's expert demonstrations.

    This is how the embedded models were made: `vlacompile train --out
    vlacompile/models/cogact/assets/cogact-tiny` reproduces the default (see its training.json), and
    `vlacompile train --preset pi0-tiny --out vlacompile/models/pi0/assets/pi0-tiny` the pi0 one.
    """
    from dataclasses import replace

    import torch

    from ..models import training_recipe
    from ..training import TrainConfig, train as run

    recipe = training_recipe(preset)
    if threads:
        torch.set_num_threads(threads)
    given = {"steps": steps, "vision_steps": vision_steps, "batch": batch, "lr": lr}
    cfg = replace(TrainConfig(seed=seed), **{k: v for k, v in given.items() if v is not None})
    out = out or Path("train") / preset
    record = run(recipe, cfg, out, log=click.echo)
    click.echo(f"wrote {out}/ (weights, statistics, loss.json, loss.png, training.json); "
               f"final loss {record['final_loss']:.4f}")
