from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from ..fsutil import check_can_create
from ..passes.token_select import METHODS, WEIGHTINGS
from .calib_options import calib_options
from .compile_options import condition_options
from .export_options import quant_options
from .options import model_option, preset_option, table


SWEEP_HELP = {"--layers": "LLM layers kept (default: 22 for CogACT, 12 for pi0)",
              "--tokens": "Visual tokens kept (default: 56 of 256 for CogACT, 128 of all cameras' for pi0)",
              "--cache-interval": "Action-head recompute interval in denoising steps"}


def _ints(name: str):
    def parse(ctx, param, value):
        if value is None:
            return [None]  # the model family's default (compile_options.DEFAULT_KEEP)
        try:
            values = [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            values = []
        if not values:
            raise click.BadParameter(f"{value!r}: give integers separated by commas, e.g. 32,28,22")
        return values
    return click.option(name, callback=parse, show_default=True,
                        default={"--layers": None, "--tokens": None, "--cache-interval": "5"}[name],
                        help=f"{SWEEP_HELP[name]}: one value, or several separated by commas for a sweep.")


def check_backend(backend: str, precisions: tuple[str, ...], device: str, cuda: bool) -> None:
    """Refuse, before any work, a combination that cannot run here. `precisions`: the first is timed,
    the others against it."""
    if device.startswith("cuda") and not cuda:
        raise UserError(f"--device {device}: PyTorch sees no CUDA GPU here; use --device cpu, or run on a GPU machine")
    if backend == "torch" and (len(precisions) > 1 or precisions[0] in ("int8", "fp8")):
        raise UserError(f"--precision {','.join(precisions)}: the torch backend times one of fp32, fp16, bf16; time "
                        "int8 / fp8 and compare precisions on onnxruntime or tensorrt")
    if backend == "onnxruntime" and "bf16" in precisions:
        raise UserError("--precision bf16 with --backend onnxruntime: ONNX Runtime has no CPU bf16 kernels; "
                        "use --backend tensorrt or torch, or --precision fp32 / fp16")
    if backend == "onnxruntime" and "fp8" in precisions:
        raise UserError("--precision fp8 with --backend onnxruntime: ONNX Runtime's CPU provider has no fp8 compute; "
                        "use --backend tensorrt on an Ada, Hopper or Thor GPU, or --precision fp32 / fp16 / int8")


@click.command()
@model_option
@preset_option
@_ints("--layers")
@_ints("--tokens")
@_ints("--cache-interval")
@click.option("--mlp-sparsity", type=float, default=0.25, show_default=True,
              help="Fraction of MLP intermediate channels removed in every kept layer. 0: none.")
@click.option("--expert-mlp-sparsity", type=float, default=None,
              help="pi0 only: the fraction of the action expert's MLP channels removed [default: 0, whole].")
@click.option("--token-method", type=click.Choice(METHODS), default="efficientvla", show_default=True,
              help="Visual token selection: EfficientVLA, or the FastV / random / none baselines.")
@click.option("--token-weighting", type=click.Choice(WEIGHTINGS), default="auto", show_default=True,
              help="proportional attention for the kept tokens, or none (the paper's plain drop); auto: "
                   "proportional where the family supports it.")
@click.option("--select-layer", type=int, default=2, show_default=True,
              help="Tokens are selected before this LLM layer, scored by the attention of the one before.")
@condition_options
@calib_options
@click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt", "torch"]), default="onnxruntime",
              show_default=True, help="What runs the compiled model (torch: PyTorch, compiled, on --device).")
@click.option("--precision", default="fp32", show_default=True,
              help="Precision of the compiled model: fp32, fp16, bf16, int8 or fp8 (bf16: TensorRT or torch, fp8: "
                   "TensorRT; ONNX Runtime has no CPU bf16 kernels or fp8 compute). Several, comma-separated "
                   "(fp32,int8), are timed in the same run against the first, per module and end to end, with their "
                   "graph sizes (ONNX backends, one configuration).")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when PyTorch sees a GPU).")
@click.option("--no-compile", is_flag=True, help="torch backend: eager instead of torch.compile.")
@click.option("--engines", type=click.Path(path_type=Path, file_okay=False), default="engines", show_default=True,
              help="Engines folder for --backend tensorrt (built there if missing).")
@click.option("--random-weights", is_flag=True,
              help="A released preset (e.g. cogact-base) at full size with seeded random weights: speed only.")
@click.option("--eval-episodes", type=click.IntRange(0), default=10, show_default=True,
              help="Sweeps: held-out benchmark episodes for each configuration's closed-loop success (0: skip).")
@click.option("--runs", type=click.IntRange(1), default=20, show_default=True,
              help="Timed calls per measurement (p50 / p90 are over these).")
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True,
              help="Untimed calls before each measurement.")
@quant_options
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default="bench", show_default=True,
              help="Folder for bench.json and bench.md (a sweep: sweep.json, sweep.md, sweep.png).")
def bench(model, preset, layers, tokens, cache_interval, mlp_sparsity, expert_mlp_sparsity, token_method,
          token_weighting, select_layer, condition_map, condition_map_data, condition_map_episodes,
          calib_dir, stored, cache_dir, backend, precision, device, no_compile, engines, random_weights, eval_episodes,
          runs, warmup, quant_method, quant_recipe, out):
    """Latency per module and end to end, reference against compiled, with params, FLOPs and memory.

    Several values in --layers / --tokens / --cache-interval run a sweep: every combination, with
    its end-to-end speedup and its fidelity on held-out episodes, as a table and a plot.
    """
    import torch

    from ..bench import BenchConfig, markdown, measure, precision_table, table1
    from ..fsutil import write_json, write_text
    from ..models import resolve
    from ..sweep import run_sweep
    from .compile_options import config_for
    from .export_options import precisions as parse_precisions, quant_config

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    chosen = parse_precisions(precision)
    check_backend(backend, chosen, device, torch.cuda.is_available())
    check_can_create(out / "bench.json")
    first, *more = chosen
    if more and len(layers) * len(tokens) * len(cache_interval) > 1:
        raise UserError(f"--precision {precision}: a sweep times one precision; compare precisions on one "
                        "configuration")
    policy = resolve(model, preset, random_weights)
    quant = quant_config(quant_method, quant_recipe, policy, chosen, "torchscript", calib_dir)
    cfg = BenchConfig(backend, first, runs, warmup, device, not no_compile, engines, compare=tuple(more),
                      eval_episodes=eval_episodes, quant=quant)
    configs = [config_for(policy.cfg, n, t, mlp_sparsity=mlp_sparsity, expert_mlp_sparsity=expert_mlp_sparsity,
                          cache_interval=c, token_method=token_method,
                          token_weighting=token_weighting, select_layer=select_layer, condition_map=condition_map,
                          condition_map_data=condition_map_data, condition_map_episodes=condition_map_episodes)
               for n in layers for t in tokens for c in cache_interval]
    if len(configs) > 1:
        files = run_sweep(policy, configs, cfg, calib_dir, cache_dir, stored, select_layer, out, log=click.echo)
        click.echo(f"wrote {', '.join(str(f) for f in files)}")
        return
    from .. import pipeline

    compiled = pipeline.rewrite(policy, configs[0], calib_dir, cache_dir, stored, select_layer)
    result = measure(policy, compiled, cfg)
    headers, rows = table1(result)
    click.echo(f"{policy.source}: reference {result['reference']}; compiled {backend} {precision} on {device}")
    click.echo(table(headers, rows))
    if more:
        click.echo(table(*precision_table(result)))
    write_json(out / "bench.json", result)
    write_text(out / "bench.md", markdown(result))
    click.echo(f"memory: {result['memory']}; wrote {out / 'bench.json'} and {out / 'bench.md'}")
