from __future__ import annotations

import click

from .calib_options import calib_cache_option, calib_data_option
from .options import OldNames, model_option, preset_option, table


@click.command()
@model_option
@preset_option
@calib_data_option
@calib_cache_option("--out")
@click.option("--select-layer", type=int, default=2, show_default=True, help="Layer whose input tokens are scored.")
@click.option("--recalibrate", "--force", "force", cls=OldNames, is_flag=True,
              help="Recompute even if a stored calibration exists.")
def calibrate(model, preset, calib_dir, cache_dir, select_layer, force):
    """Measure layer importance, MLP channel importance, token relevance and the action head's cross-step
    similarity (CogACT's DiT blocks, pi0's expert layers)."""
    from .. import pipeline
    from ..models import resolve

    policy = resolve(model, preset)
    calib, reused, _ = pipeline.calibrate(policy, calib_dir, cache_dir, select_layer=select_layer, force=force)
    meta = calib.meta
    click.echo(f"{'reused' if reused else 'wrote'} {calib.path} ({meta['samples']} samples, model {meta['model']})")
    imp = meta["layer_importance"]
    click.echo("layers, least important first: " + " ".join(f"{i}({imp[i]:.4f})" for i in calib.ranking()))
    sim = meta["dit_similarity"]
    unit = sim.get("unit", "block")  # calibrations stored before it was recorded
    rows = [[f"{unit} {j}", " ".join(f"{v:+.2f}" for v in sim["attn"][j]), " ".join(f"{v:+.2f}" for v in sim["mlp"][j])]
            for j in range(len(sim["attn"]))]
    click.echo(f"action head cross-step cosine per {unit}, steps (1,0) (2,1) ...:")
    click.echo(table([unit, "attention", "mlp"], rows))
