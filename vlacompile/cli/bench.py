from __future__ import annotations

from pathlib import Path

import click

from ..export import PRECISIONS
from ..passes.token_select import METHODS
from .calib_options import calib_options
from .options import model_option, preset_option, table


def _ints(name: str):
    def parse(ctx, param, value):
        try:
            return [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{value!r}: give integers separated by commas, e.g. 32,28,22") from None
    return click.option(name, callback=parse, show_default=True,
                        default={"--layers": "22", "--tokens": "56", "--cache-interval": "5"}[name],
                        help="One value, or several separated by commas for a sweep.")


@click.command()
@model_option
@preset_option
@_ints("--layers")
@_ints("--tokens")
@_ints("--cache-interval")
@click.option("--mlp-sparsity", type=float, default=0.25, show_default=True)
@click.option("--token-method", type=click.Choice(METHODS), default="efficientvla", show_default=True)
@click.option("--select-layer", type=int, default=2, show_default=True)
@calib_options
@click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt", "torch"]), default="onnxruntime",
              show_default=True, help="What runs the compiled model (torch: PyTorch, compiled, on --device).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--device", default=None, help="cpu or cuda (default: cuda when PyTorch sees a GPU).")
@click.option("--no-compile", is_flag=True, help="torch backend: eager instead of torch.compile.")
@click.option("--engines", type=click.Path(path_type=Path, file_okay=False), default="engines", show_default=True)
@click.option("--random-weights", is_flag=True,
              help="A released preset (e.g. cogact-base) at full size with seeded random weights: speed only.")
@click.option("--eval-episodes", type=click.IntRange(0), default=10, show_default=True,
              help="Sweeps: held-out benchmark episodes for each configuration's closed-loop success (0: skip).")
@click.option("--runs", type=click.IntRange(1), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default="bench", show_default=True,
              help="Folder for bench.json and bench.md (a sweep: sweep.json, sweep.md, sweep.png).")
def bench(model, preset, layers, tokens, cache_interval, mlp_sparsity, token_method, select_layer, calib_dir,
          stored, cache_dir, backend, precision, device, no_compile, engines, random_weights, eval_episodes, runs, warmup,
          out):
    """Latency per module and end to end, reference against compiled, with params, FLOPs and memory.

    Several values in --layers / --tokens / --cache-interval run a sweep: every combination, with
    its end-to-end speedup and its fidelity on held-out episodes, as a table and a plot.
    """
    import torch

    from ..bench import BenchConfig, markdown, measure, table1
    from ..fsutil import write_json, write_text
    from ..models import resolve
    from ..sweep import run_sweep
    from .compile_options import compress_config

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = BenchConfig(backend, precision, runs, warmup, device, not no_compile, engines, eval_episodes)
    policy = resolve(model, preset, random_weights)
    configs = [compress_config(policy.cfg.llm.layers, policy.cfg.visual_tokens, n, t, mlp_sparsity, c, token_method,
                               select_layer) for n in layers for t in tokens for c in cache_interval]
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
    write_json(out / "bench.json", result)
    write_text(out / "bench.md", markdown(result))
    click.echo(f"memory: {result['memory']}; wrote {out / 'bench.json'} and {out / 'bench.md'}")
