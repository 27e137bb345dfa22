from __future__ import annotations

import click

from .calib_options import calib_options
from .compile_options import compile_options, config_for
from .export_options import export_options, precisions, quant_config
from .options import model_option, preset_option, table


@click.command(name="export")
@model_option
@preset_option
@compile_options
@calib_options
@export_options
def export_cmd(model, preset, calib_dir, stored, cache_dir, out, force, precision, exporter, quant_method,
               quant_recipe, **flags):
    """Rewrite the model and export it as vision / llm / dit ONNX graphs with manifest.json."""
    from .. import pipeline
    from ..export import ExportConfig, export
    from ..models import export_declaration, resolve
    from ..output import check_replaceable

    chosen = precisions(precision)
    check_replaceable(out, "graphs", force)  # before any work; export checks again under its lock
    policy = resolve(model, preset)
    quant = quant_config(quant_method, quant_recipe, policy, chosen, exporter, calib_dir)
    cfg = ExportConfig(chosen, exporter, quant=quant)
    config = config_for(policy.cfg, **flags)
    compiled = pipeline.rewrite(policy, config, calib_dir, cache_dir, stored, flags["select_layer"])
    sample = compiled.heldout[0]
    trace = export_declaration(policy).reference_tensors(policy, compiled.model, sample, policy.noise(0))
    exported = export(policy, compiled.model, out, cfg, trace, compiled.provenance(), data=compiled.quant_data(),
                      force=force)
    took = lambda key: f"{exported.seconds[key]:.1f} s" if key in exported.seconds else "quantized"  # noqa: E731
    rows = [[f"{name}.{p}.onnx", tensors(g["inputs"]), tensors(g["outputs"]), took(f"{name}.{p}")]
            for p, graphs in exported.manifest["graphs"].items() for name, g in graphs.items()]
    click.echo(table(["graph", "inputs", "outputs", "export"], rows))
    click.echo(f"wrote {out}/ (manifest.json lists every file's sha256); check it with `vlacompile validate --graphs {out}`")


def tensors(specs: list[dict], shown: int = 4) -> str:
    """The first tensors of a graph's IO; pi0's K/V cache makes dozens, all listed in manifest.json."""
    text = ", ".join(f"{t['name']}{t['shape']}" for t in specs[:shown])
    return text + (f", ... {len(specs) - shown} more" if len(specs) > shown else "")
