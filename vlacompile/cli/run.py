from __future__ import annotations

import json
from pathlib import Path

import click

from ..export import PRECISIONS
from ..runtime.image import open_image
from ..errors import UserError
from .predict import DIMS, IMAGE_HELP, INSTRUCTION_HELP, STATE_HELP, UNNORM_HELP, parse_state, print_actions, seed_option


@click.command(name="run")
@click.option("--bundle", type=click.Path(exists=True, path_type=Path), required=True,
              help="Bundle folder, or its .tar.gz (unpacked to a temporary folder, safely).")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, multiple=True,
              help=IMAGE_HELP + " pi0 graphs take one per camera slot, in slot order: repeat --image.")
@click.option("--instruction", required=True, help=INSTRUCTION_HELP)
@click.option("--state", default=None, help=STATE_HELP)
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="Default: the best available (fp16 engines on TensorRT, fp32 on ONNX Runtime).")
@click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt"]), default=None,
              help="Default: TensorRT where it and engines are present, else ONNX Runtime.")
@seed_option
@click.option("--unnorm-key", default=None, help=UNNORM_HELP)
@click.option("--allow-unvalidated", is_flag=True,
              help="Run graphs whose validation against PyTorch did not complete or failed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def run_cmd(bundle, image, instruction, state, precision, backend, seed, unnorm_key, allow_unvalidated, as_json):
    """Run a bundle: image + instruction (+ state for pi0) -> the action chunk, with no model code."""
    from ..runtime import load

    with load(bundle, precision, backend, allow_unvalidated) as policy:
        reads_state = "state" in policy.manifest
        if not reads_state and (len(image) > 1 or state is not None):
            raise UserError(f"{bundle} holds CogACT graphs: give them one --image and no --state")
        policy.prompt.ids(instruction)  # the prompt budget, before the image is even read
        images = [open_image(p) for p in image]
        actions = policy.predict(images if reads_state else images[0], instruction, seed=seed, unnorm_key=unnorm_key,
                                 state=parse_state(state))
        where = f"{policy.precision} on {policy.backend}"
    dims = DIMS if actions.shape[1] == len(DIMS) else [f"a{i}" for i in range(actions.shape[1])]
    if as_json:
        click.echo(json.dumps({"bundle": str(bundle), "runtime": where, "seed": seed, "dims": dims,
                               "actions": actions.round(6).tolist()}))
        return
    print_actions(f"{bundle}: {instruction!r} ({where}, seed {seed})", actions, dims)
