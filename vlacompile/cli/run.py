from __future__ import annotations

import json
from pathlib import Path

import click

from ..export import PRECISIONS
from ..runtime.image import open_image
from .predict import DIMS, IMAGE_HELP, INSTRUCTION_HELP, UNNORM_HELP, print_actions, seed_option


@click.command(name="run")
@click.option("--bundle", type=click.Path(exists=True, path_type=Path), required=True,
              help="Bundle folder, or its .tar.gz (unpacked to a temporary folder, safely).")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help=IMAGE_HELP)
@click.option("--instruction", required=True, help=INSTRUCTION_HELP)
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="Default: the best available (fp16 engines on TensorRT, fp32 on ONNX Runtime).")
@click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt"]), default=None,
              help="Default: TensorRT where it and engines are present, else ONNX Runtime.")
@seed_option
@click.option("--unnorm-key", default=None, help=UNNORM_HELP)
@click.option("--allow-unvalidated", is_flag=True,
              help="Run graphs whose validation against PyTorch did not complete or failed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def run_cmd(bundle, image, instruction, precision, backend, seed, unnorm_key, allow_unvalidated, as_json):
    """Run a bundle: image + instruction -> the 16x7 action chunk, with no model code."""
    from ..runtime import load

    with load(bundle, precision, backend, allow_unvalidated) as policy:
        policy.prompt.ids(instruction)  # the prompt budget, before the image is even read
        actions = policy.predict(open_image(image), instruction, seed=seed, unnorm_key=unnorm_key)
        where = f"{policy.precision} on {policy.backend}"
    if as_json:
        click.echo(json.dumps({"bundle": str(bundle), "runtime": where, "seed": seed, "dims": DIMS,
                               "actions": actions.round(6).tolist()}))
        return
    print_actions(f"{bundle}: {instruction!r} ({where}, seed {seed})", actions)
