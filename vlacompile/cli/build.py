from __future__ import annotations

import click

from .calib_options import calib_options
from .compile_options import compile_options, config_for
from .export_options import engine_options, export_options, precisions, quant_config, validate_options
from .options import human, model_option, preset_option, table
from .validate import report


@click.command()
@model_option
@preset_option
@compile_options
@calib_options
@export_options
@validate_options
@engine_options
@click.option("--latency-runs", type=click.IntRange(1), default=10, show_default=True,
              help="Timed runs (after 2 warm-up runs) of the reference and of each compiled pipeline.")
@click.option("--eval-episodes", type=click.IntRange(0), default=10, show_default=True,
              help="Held-out benchmark episodes for the closed-loop check of the reference and of every compiled "
                   "precision (0: skip it; `vlacompile eval` runs the full count).")
@click.option("--recalibrate", is_flag=True, help="Recompute the calibration even if a stored one exists.")
def build(model, preset, calib_dir, stored, cache_dir, out, force, precision, exporter, quant_method, quant_recipe,
          samples, backend, engines, workspace_mb, opt_level, timing_cache, latency_runs, eval_episodes, recalibrate,
          **flags):
    """Calibrate, rewrite, export, validate, then summarize: the whole compile in one command.

    Exits 1 when validation fails; the graphs stay on disk for inspection.
    """
    from ..build import BuildConfig, build as run
    from ..engines import EngineConfig
    from ..export import ExportConfig
    from ..models import resolve
    from ..output import check_replaceable
    from ..sweep import label

    chosen = precisions(precision)
    check_replaceable(out, "graphs", force)  # before any work (the build checks again under its lock)
    policy = resolve(model, preset)
    quant = quant_config(quant_method, quant_recipe, policy, chosen, exporter, calib_dir)
    export = ExportConfig(chosen, exporter, quant=quant)
    config = config_for(policy.cfg, **flags)
    bc = BuildConfig(out, export, samples, calib_dir, cache_dir, stored,
                     flags["select_layer"], latency_runs, recalibrate, backend, engines,
                     EngineConfig(workspace_mb=workspace_mb, opt_level=opt_level, timing_cache=timing_cache), force,
                     eval_episodes)
    click.echo(f"build {policy.source}: {label(config, policy.cfg)} (LLM layers, visual tokens, MLP sparsity, "
               "cache interval; +map: the condition map)")
    if "bf16" in export.precisions and backend == "onnxruntime":
        click.echo("note: bf16 graphs are exported but not checked or timed here (ONNX Runtime has no CPU bf16 "
                   "kernels); check them on the device with `vlacompile validate --backend tensorrt`")
    if "fp8" in export.precisions and backend == "onnxruntime":
        click.echo("note: fp8 graphs are exported and linted but not checked, timed or evaluated here (ONNX Runtime "
                   "has no CPU fp8 compute); check them on the device with `vlacompile validate --backend tensorrt`")
    result = run(policy, config, bc, log=click.echo)
    report(result.validation)
    click.echo(summary_table(result.summary))
    for line in warning_lines(result.summary):
        click.echo(line)
    click.echo(f"wrote {out}/ in {result.summary['wall_seconds']:.1f} s (summary: {out}/build.json)")
    if not result:
        raise SystemExit(1)


def summary_table(s: dict) -> str:
    from ..report.summary import REFERENCE, fidelity_verdict, parity_verdict, pass_record, success_rates

    ref, new = s["costs"]["reference"], s["costs"]["compressed"]
    total = lambda cs, k: sum(c[k] for c in cs)  # noqa: E731
    ratio = lambda k: f"{human(total(new, k), 'FLOP' if k == 'flops' else '')} ({total(new, k) / total(ref, k):.1%})"  # noqa: E731
    lat = dict(s["latency"])
    base = lat.pop(REFERENCE)["p50_ms"]
    compiled = ", ".join(f"{k.removeprefix('compiled ')} {v['p50_ms']:.1f} ms ({base / v['p50_ms']:.2f}x)"
                         for k, v in lat.items())
    parity, fid = s["parity"], s["fidelity"]
    worst = {p["precision"]: min(o["cosine"] for o in p["outputs"]) for p in parity["pipelines"]}
    rows = [
        ["params", human(total(ref, "params")), ratio("params")],
        ["FLOPs per predict", human(total(ref, "flops"), "FLOP"), ratio("flops")],
        ["latency p50", f"{base:.1f} ms (PyTorch eager)", compiled],
        ["parity vs PyTorch", "", parity_verdict(parity).split(" (")[0] + "; actions cosine "
         + ", ".join(f"{p} {c:.6f}" for p, c in worst.items())],
        ["fidelity (held out)", "", f"{fidelity_verdict(fid).split(':')[0]}: {fid.get('feature', 'cognition')} "
                                    f"cosine {fid['cognition_cosine']:.4f}, actions cosine "
                                    f"{fid['actions']['overall']['cosine']:.4f}"],
    ]
    record = pass_record(s, "condition_map")
    if record is not None:
        ch = record["changes"]
        err, cos = ch["heldout_error"], ch["heldout_cosine"]
        rows.insert(4, ["condition map", "", f"fitted on {ch['fit_samples']} frames; held out: cognition error "
                        f"{err['before']:.3f} -> {err['after']:.3f}, cosine {cos['before']:.4f} -> {cos['after']:.4f}"
                        if ch["installed"] else "not installed: no gain on held-out frames"])
    loop = s.get("closed_loop")
    if loop:
        rates = success_rates(loop)
        ref_name = next(iter(rates))
        reference = rates.pop(ref_name)
        rows.append([f"closed-loop success ({reference['episodes']} episodes)", f"{reference['success_rate']:.0%} (PyTorch)",
                     ", ".join(f"{name.removeprefix('compiled ')} {r['success_rate']:.0%}" for name, r in rates.items())])
    return table(["", "reference", "compiled"], rows)


def warning_lines(s: dict) -> list[str]:
    from ..report.summary import warnings

    return [f"{level}: {text}" for level, text in warnings(s)]
