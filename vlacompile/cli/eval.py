from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ..sim.tasks import FAMILIES
from ..workers import usable_cores
from .calib_options import calib_options
from .compile_options import compile_options, config_for
from .options import model_option, preset_option, table


def _families(ctx, param, value: str) -> tuple[str, ...]:
    from ..errors import UserError

    chosen = FAMILIES if value == "all" else tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [f for f in chosen if f not in FAMILIES]
    if bad or not chosen:
        raise UserError(f"--families {value!r}: unknown task family {', '.join(bad) or '(none)'}; choose from "
                        f"{', '.join(FAMILIES)} or all")
    return chosen


@click.command(name="eval")
@model_option
@preset_option
@click.option("--graphs", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also evaluate these exported graphs through the deployed runtime.")
@click.option("--bundle", type=click.Path(exists=True, path_type=Path), default=None,
              help="Also evaluate this bundle (folder or .tar.gz) through the deployed runtime.")
@click.option("--precision", default=None,
              help="Graph precisions to evaluate, comma-separated: fp32, fp16, bf16, int8, fp8 (default: every one "
                   "the folder has and the backend can run; ONNX Runtime runs no bf16 or fp8).")
@click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt"]), default="onnxruntime", show_default=True,
              help="Runtime for --graphs / --bundle.")
@click.option("--engines", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Engines folder for --backend tensorrt (default: <graphs>/engines).")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Evaluate the uncompressed PyTorch model too.")
@click.option("--rewritten", is_flag=True,
              help="Also evaluate the PyTorch model rewritten with the compile flags below (for ablations).")
@compile_options
@calib_options
@click.option("--episodes", type=int, default=100, show_default=True, help="Held-out episodes, families in turn.")
@click.option("--families", default="all", show_default=True, callback=_families,
              help=f"Task families, comma-separated: {', '.join(FAMILIES)}.")
@click.option("--start", type=int, default=0, show_default=True, help="First held-out seed (offset into the split).")
@click.option("--execute", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Actions executed from each predicted chunk before the policy re-plans.")
@click.option("--ensemble", type=click.IntRange(0, 16), default=0, show_default=True,
              help="CogACT's adaptive action ensemble over the last N predictions (2 on its Google-robot setup); "
                   "0: none. Needs --execute 1, a prediction every step.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the initial diffusion noise (the same for every policy at the same re-plan).")
@click.option("--filmstrips", type=click.IntRange(0), default=5, show_default=True,
              help="Episodes drawn as a filmstrip (filmstrip.png, of the last policy).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default="eval", show_default=True,
              help="Folder for eval.json, eval.md and filmstrip.png.")
@click.option("--workers", type=click.IntRange(1), default=usable_cores, show_default="one per core",
              help="Processes that run the episodes of the fp32 graphs on ONNX Runtime and of the PyTorch policies "
                   "on the CPU, one thread each (Linux; no more than half the available memory holds). The fp32 "
                   "graphs' episodes are the same, step for step, as in one process; PyTorch's numbers move by about "
                   "1e-7 with the thread count (317 successes against 318 on 400 episodes). fp16 graphs and "
                   "TensorRT run in this process: their outcomes change with the thread count.")
def eval_cmd(model, preset, graphs, bundle, precision, backend, engines, reference, rewritten, calib_dir, stored,
             cache_dir, episodes, families, start, execute, ensemble, seed, filmstrips, out, workers, **flags):
    """Closed-loop success on held-out episodes of the table-top benchmark.

    The reference, the rewritten model and compiled graphs run the same episodes with the same
    initial noise; the table gives success per task family with a 95% confidence interval.
    """
    from .. import closed_loop
    from ..sim.evaluate import EvalConfig

    cfg = EvalConfig(episodes, families, "eval", start, execute, seed, filmstrips, ensemble)
    cfg.episodes_list()  # a bad range fails before anything loads
    with tempfile.TemporaryDirectory(prefix="vlacompile-eval.") as scratch:
        policies = _policies(model, preset, graphs, bundle, precision, backend, engines, reference, rewritten,
                             calib_dir, stored, cache_dir, flags, Path(scratch))
        result = closed_loop.run(policies, cfg, log=click.echo, workers=workers)
        for p in policies:
            close = getattr(getattr(p, "pipeline", None), "close", None)
            if close:
                close()
    click.echo(table(*closed_loop.table(result)))
    click.echo("how the episodes ended:")
    click.echo(table(*closed_loop.outcome_table(result)))
    files = closed_loop.write(result, out)
    click.echo(f"protocol: {closed_loop.protocol(result['config'])}")
    click.echo(f"wrote {', '.join(str(f) for f in files)}")


def _policies(model, preset, graphs, bundle, precision, backend, engines, reference, rewritten, calib_dir, stored,
              cache_dir, flags, scratch: Path) -> list:
    from .. import closed_loop, pipeline
    from ..errors import UserError
    from ..models import resolve
    from ..runtime import extract
    from ..runtime import manifest as manifest_io
    from ..sim.policies import TorchPolicy
    from .export_options import precisions as parse_precisions

    if graphs is not None and bundle is not None:
        raise UserError("give --graphs or --bundle, not both")
    folder = graphs if bundle is None else (bundle if bundle.is_dir() else extract(bundle, scratch))
    manifest = manifest_io.read(folder) if folder is not None else None
    if not (reference or rewritten or folder):
        raise UserError("nothing to evaluate: --no-reference needs --graphs, --bundle or --rewritten")
    policy = None
    if reference or rewritten or model is not None:
        policy = resolve(model or (manifest["model"]["source"] if manifest else None), preset)
    out = [TorchPolicy(policy)] if reference else []
    if rewritten:
        config = config_for(policy.cfg, **flags)
        compiled = pipeline.rewrite(policy, config, calib_dir, cache_dir, stored, flags["select_layer"])
        out.append(closed_loop.rewritten_policy(policy, compiled))
    if folder is not None:
        if policy is not None:
            closed_loop.check_same_model(folder, manifest, policy)
        chosen = parse_precisions(precision) if precision else _runnable(manifest, backend)
        out += closed_loop.graph_policies(folder, chosen, backend, engines)
    return out


# precisions ONNX Runtime's CPU provider cannot run -> why (runtime.pipeline.check_runnable refuses them)
NOT_ON_CPU = {"bf16": "ONNX Runtime's CPU provider has no bf16 kernels",
              "fp8": "ONNX Runtime's CPU provider has no fp8 compute"}


def _runnable(manifest: dict, backend: str) -> tuple[str, ...]:
    skipped = [p for p in manifest["graphs"] if backend == "onnxruntime" and p in NOT_ON_CPU]
    for p in skipped:
        click.echo(f"{p} graphs skipped: {NOT_ON_CPU[p]} (use --backend tensorrt)")
    return tuple(p for p in manifest["graphs"] if p not in skipped)
