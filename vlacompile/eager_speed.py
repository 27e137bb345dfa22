"""End-to-end speed of the rewritten model against the eager reference, both in PyTorch, in one run.

    python -m vlacompile.eager_speed --model pi0-tiny [compile flags] [--runs 20]

This is the speedup of the passes themselves, without an exporter or a runtime (`vlacompile bench`
times the compiled graphs): one observation (a held-out calibration sample: image, instruction, and the state pi0 reads) ->
un-normalized actions, the reference and the rewritten model timed alternately in rounds so that a
change in the machine's load hits both. Compiled graphs are timed by `vlacompile bench`.
"""

from __future__ import annotations

import click

from .cli.calib_options import calib_options
from .cli.compile_options import compile_options, config_for
from .cli.options import model_option, preset_option


def predictor(policy, sample):
    """() -> actions for one observation of `sample`, with fixed noise."""
    import torch

    from .models import family

    noise, image = policy.noise(0), sample.load_image()
    pi0 = family(policy) == "pi0"

    def call():
        with torch.no_grad():  # as deployed: no autograd graph
            if pi0:
                return policy.predict([image], sample.instruction, sample.state, noise=noise)
            return policy.predict(image, sample.instruction, noise=noise)
    return call


def measure(policy, compiled_policy, sample, runs: int, rounds: int = 5) -> dict:
    from .latency import time_calls

    calls = {"reference (PyTorch eager)": predictor(policy, sample), "rewritten (PyTorch eager)":
             predictor(compiled_policy, sample)}
    ms: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            ms[name].append(time_calls(fn, warmup=1, runs=max(1, runs // rounds))["p50_ms"])
    p50 = {k: sorted(v)[len(v) // 2] for k, v in ms.items()}
    ref, new = p50.values()
    return {"p50_ms": p50, "speedup": ref / new, "rounds": rounds, "runs": runs}


@click.command()
@model_option
@preset_option
@compile_options
@calib_options
@click.option("--runs", type=click.IntRange(5), default=20, show_default=True, help="Timed calls per model.")
def main(model, preset, calib_dir, stored, cache_dir, runs, **flags):
    """Time the reference and the rewritten model (PyTorch, eager) on one held-out observation."""
    from dataclasses import replace

    import torch

    from . import pipeline
    from .models import resolve
    from .sweep import label

    policy = resolve(model, preset)
    config = config_for(policy.cfg, **flags)
    compiled = pipeline.rewrite(policy, config, calib_dir, cache_dir, stored, flags["select_layer"])
    r = measure(policy, replace(policy, model=compiled.model), compiled.heldout[0], runs)
    click.echo(f"{policy.source} {label(config, policy.cfg)}, {torch.get_num_threads()} threads: "
               + ", ".join(f"{k} {v:.1f} ms" for k, v in r["p50_ms"].items())
               + f"; speedup {r['speedup']:.2f}x (median of {r['rounds']} alternating rounds)")


if __name__ == "__main__":
    from .errors import UserError

    try:
        main(standalone_mode=False)
    except UserError as exc:  # one line, exit 2, as the vlacompile command does
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (see `python -m vlacompile.eager_speed --help`)", err=True)
        raise SystemExit(2) from None
