from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from ..export import PRECISIONS
from .predict import DIMS, _open_image


@click.command(name="run")
@click.option("--bundle", type=click.Path(exists=True, path_type=Path), required=True,
              help="Bundle folder, or its .tar.gz (unpacked to a temporary folder, safely).")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--instruction", required=True, help='What the robot should do, e.g. "pick up the red block".')
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="Default: the best available (fp16 engines on TensorRT, fp32 on ONNX Runtime).")
@click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt"]), default=None,
              help="Default: TensorRT where it and engines are present, else ONNX Runtime.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial diffusion noise (numpy).")
@click.option("--unnorm-key", default=None, help="Dataset whose action statistics un-normalize the output.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def run_cmd(bundle, image, instruction, precision, backend, seed, unnorm_key, as_json):
    """Run a bundle: image + instruction -> the 16x7 action chunk, with no model code."""
    from ..runtime import extract, load

    with tempfile.TemporaryDirectory(prefix="vlacompile-bundle.") as scratch:
        folder = bundle if bundle.is_dir() else extract(bundle, Path(scratch))
        with load(folder, precision, backend) as policy:
            actions = policy.predict(_open_image(image), instruction, seed=seed, unnorm_key=unnorm_key)
            where = f"{policy.precision} on {policy.backend}"
    if as_json:
        click.echo(json.dumps({"bundle": str(bundle), "runtime": where, "seed": seed, "dims": DIMS,
                               "actions": actions.round(6).tolist()}))
        return
    click.echo(f"{bundle}: {instruction!r} ({where}, seed {seed})")
    click.echo("step " + " ".join(f"{d:>9}" for d in DIMS))
    for i, row in enumerate(actions):
        click.echo(f"{i:>4} " + " ".join(f"{v:>9.5f}" for v in row))
