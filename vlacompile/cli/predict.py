from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UserError
from .options import json_option, model_option, preset_option

DIMS = ["x", "y", "z", "roll", "pitch", "yaw", "grip"]


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"--image {path}: not a readable image ({exc})") from None


@click.command()
@model_option
@preset_option
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Camera image (any size; resized to 224x224).")
@click.option("--instruction", required=True, help='What the robot should do, e.g. "pick up the red block".')
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial diffusion noise.")
@click.option("--unnorm-key", default=None, help="Dataset whose action statistics un-normalize the output.")
@json_option
def predict(model, preset, image, instruction, seed, unnorm_key, as_json):
    """Predict the 16x7 action chunk for one image and instruction."""
    from ..models import resolve

    policy = resolve(model, preset)
    key = policy.unnorm_key(unnorm_key)
    actions = policy.predict(_open_image(image), instruction, seed=seed, unnorm_key=key)
    if as_json:
        click.echo(json.dumps({"model": policy.source, "unnorm_key": key, "seed": seed,
                               "dims": DIMS, "actions": actions.round(6).tolist()}))
        return
    click.echo(f"{policy.source}: {instruction!r} (seed {seed}, statistics {key!r})")
    click.echo("step " + " ".join(f"{d:>9}" for d in DIMS))
    for i, row in enumerate(actions):
        click.echo(f"{i:>4} " + " ".join(f"{v:>9.5f}" for v in row))
