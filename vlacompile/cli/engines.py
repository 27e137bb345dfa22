from __future__ import annotations

from pathlib import Path

import click

from ..export import PRECISIONS
from .export_options import engine_options
from .options import table


@click.command()
@click.option("--graphs", type=click.Path(path_type=Path, file_okay=False), default="graphs", show_default=True,
              help="Graphs folder (or an unpacked bundle) with manifest.json.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default="engines", show_default=True,
              help="Where the engines and their records go.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp16", show_default=True,
              help="Which graphs to build; strongly typed, so their ONNX types decide every layer's precision.")
@engine_options
def engines(graphs, out, precision, workspace_mb, opt_level, timing_cache):
    """Build one TensorRT engine per graph, on the device that will run them."""
    from ..engines import EngineConfig, build_engines

    records = build_engines(graphs, out, EngineConfig(precision, workspace_mb, opt_level, timing_cache))
    click.echo(table(["engine", "TensorRT", "GPU", "compute capability"],
                     [[r["engine"], r["tensorrt"], r["gpu"], r["compute_capability"]] for r in records]))
    click.echo(f"wrote {out}/ ; check them with `vlacompile validate --graphs {graphs} --backend tensorrt --engines {out}`")
