from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UserError
from ..runtime.image import open_image
from ..runtime.noise import MAX_SEED
from .options import json_option, model_option, preset_option

DIMS = ["x", "y", "z", "roll", "pitch", "yaw", "grip"]

IMAGE_HELP = ("Camera image, 8-bit RGB, any size: resized to 224x224 (CogACT: bicubic, no crop; pi0: bilinear, "
              "aspect ratio kept and padded with black).")
INSTRUCTION_HELP = ('What the robot should do, e.g. "pick up the red block". The prompt it makes must fit the '
                    "model's budget: 33 tokens with the template and special tokens for every CogACT preset (about "
                    "15 words; `vlacompile info` shows the budget).")
SEED_HELP = ("Seed of the initial diffusion noise, 0 to 2**64-1: numpy's default_rng(seed), the same in `predict`, "
             "`run` and the Python APIs, so a seed gives the same actions from PyTorch and from the graphs.")
UNNORM_HELP = "Dataset whose action statistics un-normalize the output (needed when there are several)."


def seed_option(fn):
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help=SEED_HELP)(fn)


def print_actions(header: str, actions, dims=DIMS) -> None:
    click.echo(header)
    click.echo("step " + " ".join(f"{d:>9}" for d in dims))
    for i, row in enumerate(actions):
        click.echo(f"{i:>4} " + " ".join(f"{v:>9.5f}" for v in row))


STATE_HELP = ("pi0 only: the robot state (observation.state), comma-separated numbers, as many as the model's "
              "statistics hold (5 for pi0-tiny: gripper x, y, z, yaw, open).")


def parse_state(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise UserError(f"--state {text!r} is not comma-separated numbers, e.g. 0.4,0.0,0.3,0.0,1.0") from None


@click.command()
@model_option
@preset_option
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, multiple=True,
              help=IMAGE_HELP + " pi0 takes one per camera slot, in slot order: repeat --image.")
@click.option("--instruction", required=True, help=INSTRUCTION_HELP)
@click.option("--state", default=None, help=STATE_HELP)
@seed_option
@click.option("--unnorm-key", default=None, help=UNNORM_HELP)
@json_option
def predict(model, preset, image, instruction, state, seed, unnorm_key, as_json):
    """Predict the action chunk for one observation (PyTorch, uncompressed): 16x7 for CogACT, 50 steps for pi0."""
    from ..models import family, resolve

    policy = resolve(model, preset)
    if family(policy) == "pi0":
        return _predict_pi0(policy, image, instruction, parse_state(state), seed, as_json)
    if len(image) > 1 or state is not None:
        raise UserError(f"{policy.source} is a CogACT policy: give it one --image and no --state")
    image = image[0]
    key = policy.unnorm_key(unnorm_key)
    policy.check_instruction(instruction)  # the prompt budget, before the image is even read
    actions = policy.predict(open_image(image), instruction, seed=seed, unnorm_key=key)
    if as_json:
        click.echo(json.dumps({"model": policy.source, "unnorm_key": key, "seed": seed,
                               "dims": DIMS, "actions": actions.round(6).tolist()}))
        return
    print_actions(f"{policy.source}: {instruction!r} (seed {seed}, statistics {key!r})", actions)


def _predict_pi0(policy, images, instruction, state, seed, as_json) -> None:
    if state is None:
        raise UserError(f"{policy.source} is a pi0 policy: give the robot state with --state "
                        f"({policy.statistics.state_dim} comma-separated numbers)")
    actions = policy.predict([open_image(p) for p in images], instruction, state, seed=seed)
    dims = DIMS if actions.shape[1] == len(DIMS) else [f"a{i}" for i in range(actions.shape[1])]
    if as_json:
        click.echo(json.dumps({"model": policy.source, "seed": seed, "cameras": policy.cameras[: len(images)],
                               "dims": dims, "actions": actions.round(6).tolist()}))
        return
    print_actions(f"{policy.source}: {instruction!r} (seed {seed}, {len(images)} camera(s))", actions, dims)
