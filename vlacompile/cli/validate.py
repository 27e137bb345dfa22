from __future__ import annotations

from pathlib import Path

import click

from .calib_options import calib_options
from .export_options import precisions, validate_options
from ..compare.parity import PARITY_HEADERS, parity_rows
from .options import model_option, preset_option, table


@click.command()
@click.option("--graphs", "folder", type=click.Path(path_type=Path, file_okay=False), default="graphs",
              show_default=True, help="Folder written by `vlacompile export` or `vlacompile build`.")
@model_option
@preset_option
@calib_options
@validate_options
@click.option("--precision", "precision", default=None, help="Precisions to check (default: all in the folder).")
def validate(folder, model, preset, calib_dir, stored, cache_dir, samples, backend, engines, precision):
    """Lint the graphs for TensorRT and compare them with the PyTorch rewritten model.

    The model and compile flags come from the folder's manifest; --model overrides where the
    checkpoint lives now. Exits 1 when any check fails.
    """
    from .. import pipeline
    from ..compare.validate import validate as run
    from ..data.calib import load_calib, spread
    from ..errors import UserError
    from ..models import resolve
    from ..passes import CompressConfig
    from ..runtime import manifest as manifest_io

    manifest = manifest_io.read(folder)
    manifest_io.verify(folder, manifest, manifest_io.needed_files(manifest))  # before any work
    chosen = precisions(precision) if precision else None
    policy = resolve(model or manifest["model"]["source"], preset)
    config = CompressConfig.from_json(manifest["compile"])
    compiled = pipeline.rewrite(policy, config, calib_dir, cache_dir, stored, manifest["calibration"]["select_layer"])
    if compiled.calib.meta["model_hash"] != manifest["calibration"]["model_hash"]:
        raise UserError(f"{folder} was compiled from other weights than {policy.source}; "
                        "pass the checkpoint it was built from with --model, or export again")
    if compiled.calib.meta["data_hash"] != manifest["calibration"]["data_hash"]:
        raise UserError(f"{folder} was compiled with other calibration data than {calib_dir}; "
                        "pass the same --calib-data folder, or export again")
    result = run(folder, policy, compiled.model, spread(load_calib(calib_dir), samples),
                 chosen, backend, engines=engines, verified=True)
    report(result)
    if not result:
        raise SystemExit(1)


def report(result) -> None:
    """Lint findings, the parity table, and any localized fault."""
    for lint in result.lint:
        state = "ok" if lint else f"{len(lint.findings)} problems"
        click.echo(f"lint {lint.graph}: {lint.nodes} nodes, {state}")
        for finding in lint.findings[:10]:
            click.echo(f"  {finding}")
    click.echo(table(PARITY_HEADERS, parity_rows(result.to_json(), fold=4)))  # every output: manifest "parity"
    for precision, why in result.skipped.items():
        click.echo(f"{precision} parity not checked here: {why}")
    for p in result.graphs:
        if not p:
            click.echo(f"{p.graph} {p.precision}: {p.fault or p.note}")
    click.echo("parity: " + ("passed" if result else "FAILED"))
