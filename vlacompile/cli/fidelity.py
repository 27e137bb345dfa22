from __future__ import annotations

from pathlib import Path

import click

from ..fsutil import check_can_create, write_json
from .calib_options import calib_options
from .compile_options import compile_options, config_for
from .options import model_option, preset_option, table


@click.command()
@model_option
@preset_option
@compile_options
@calib_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("fidelity.json"), show_default=True,
              help="JSON report.")
def fidelity(model, preset, calib_dir, stored, cache_dir, out, **flags):
    """Compare the rewritten model with the reference on held-out calibration samples."""
    from .. import pipeline
    from ..compare.fidelity import fidelity as measure
    from ..models import resolve

    check_can_create(out)  # before the rewrite, not after it
    policy = resolve(model, preset)
    config = config_for(policy.cfg, **flags)
    compiled = pipeline.rewrite(policy, config, calib_dir, cache_dir, stored, flags["select_layer"])
    report = {"config": config.to_json(), "passes": [r.to_json() for r in compiled.records],
              **measure(policy, compiled.model, compiled.heldout)}
    write_json(out, report)
    act = report["actions"]
    click.echo(f"held-out samples: {report['samples']}; {report['feature']} cosine {report['cognition_cosine']:.4f} "
               f"(min {report['cognition_cosine_min']:.4f})")
    rows = [["all", *_cells(act["overall"])]] + [[d, *_cells(m)] for d, m in act["per_dim"].items()]
    click.echo(table(["actions", "cosine", "L1", "Linf"], rows))
    click.echo(f"wrote {out}")


def _cells(m: dict) -> list[str]:
    return [f"{m['cosine']:.4f}", f"{m['l1']:.4f}", f"{m['linf']:.4f}"]
