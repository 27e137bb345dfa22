from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--preset", default="cogact-tiny", show_default=True,
              help="The preset trained from scratch (its dimensions; small presets only, on a CPU).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Optimizer steps (default: the shipped run's).")
@click.option("--batch", type=click.IntRange(1), default=None, help="Frames per step (default: the shipped run's).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Peak learning rate of AdamW.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the initialization, the demonstrations' order and noise, and the diffusion draws.")
@click.option("--threads", type=click.IntRange(1), default=None, help="PyTorch CPU threads (default: PyTorch's).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default="train/cogact-tiny",
              show_default=True, help="Folder for weights, dataset statistics, loss curve and training record.")
def train(preset, steps, batch, lr, seed, threads, out):
    """Train a small preset from scratch on the simulator's expert demonstrations (CogACT's objective).

    This is how the embedded default was made; `vlacompile train --out
    vlacompile/models/cogact/assets/cogact-tiny` reproduces it (see its training.json).
    """
    from dataclasses import replace

    import torch

    from ..errors import UserError
    from ..models.cogact.config import PRESETS
    from ..models.cogact.policy import TINY_TOKENIZER
    from ..models.cogact.prompt import PromptTokenizer
    from ..training import TrainConfig, train as run

    if preset not in PRESETS or PRESETS[preset].llm.hidden > 512:
        small = [n for n, p in PRESETS.items() if p.llm.hidden <= 512]
        raise UserError(f"--preset {preset!r}: training here is for small presets ({', '.join(small)})")
    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(seed=seed)
    cfg = replace(cfg, **{k: v for k, v in (("steps", steps), ("batch", batch), ("lr", lr)) if v is not None})
    record = run(PRESETS[preset], PromptTokenizer(TINY_TOKENIZER), cfg, out, log=click.echo)
    click.echo(f"wrote {out}/ (weights, dataset_statistics.json, loss.json, loss.png, training.json); "
               f"final loss {record['final_loss']:.4f}")
