from __future__ import annotations

import json
from pathlib import Path

import click

from ..runtime.image import open_image
from ..runtime.noise import MAX_SEED
from .options import json_option, model_option, preset_option

DIMS = ["x", "y", "z", "roll", "pitch", "yaw", "grip"]

IMAGE_HELP = "Camera image, 8-bit RGB (any size: resized to 224x224, bicubic, no crop)."
INSTRUCTION_HELP = ('What the robot should do, e.g. "pick up the red block". The prompt it makes must fit the '
                    "model's budget: 33 tokens with the template and special tokens for every CogACT preset (about "
                    "15 words; `vlacompile info` shows the budget).")
SEED_HELP = ("Seed of the initial diffusion noise, 0 to 2**64-1: numpy's default_rng(seed), the same in `predict`, "
             "`run` and the Python APIs, so a seed gives the same actions from PyTorch and from the graphs.")
UNNORM_HELP = "Dataset whose action statistics un-normalize the output (needed when there are several)."


def seed_option(fn):
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help=SEED_HELP)(fn)


def print_actions(header: str, actions) -> None:
    click.echo(header)
    click.echo("step " + " ".join(f"{d:>9}" for d in DIMS))
    for i, row in enumerate(actions):
        click.echo(f"{i:>4} " + " ".join(f"{v:>9.5f}" for v in row))


@click.command()
@model_option
@preset_option
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help=IMAGE_HELP)
@click.option("--instruction", required=True, help=INSTRUCTION_HELP)
@seed_option
@click.option("--unnorm-key", default=None, help=UNNORM_HELP)
@json_option
def predict(model, preset, image, instruction, seed, unnorm_key, as_json):
    """Predict the 16x7 action chunk for one image and instruction (PyTorch, uncompressed)."""
    from ..models import resolve

    policy = resolve(model, preset)
    key = policy.unnorm_key(unnorm_key)
    policy.check_instruction(instruction)  # the prompt budget, before the image is even read
    actions = policy.predict(open_image(image), instruction, seed=seed, unnorm_key=key)
    if as_json:
        click.echo(json.dumps({"model": policy.source, "unnorm_key": key, "seed": seed,
                               "dims": DIMS, "actions": actions.round(6).tolist()}))
        return
    print_actions(f"{policy.source}: {instruction!r} (seed {seed}, statistics {key!r})", actions)
