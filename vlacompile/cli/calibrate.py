from __future__ import annotations

from pathlib import Path

import click

from .options import model_option, preset_option, table


@click.command()
@model_option
@preset_option
@click.option("--calib", "calib_dir", type=click.Path(path_type=Path), default="calib_data", show_default=True,
              help="Calibration folder (manifest.jsonl + images).")
@click.option("--out", type=click.Path(path_type=Path), default=".vlacompile-cache", show_default=True,
              help="Where results are stored, keyed by a hash of the weights and the data.")
@click.option("--select-layer", type=int, default=2, show_default=True, help="Layer whose input tokens are scored.")
@click.option("--force", is_flag=True, help="Recompute even if stored results exist.")
def calibrate(model, preset, calib_dir, out, select_layer, force):
    """Measure layer importance, MLP channel importance, token relevance and DiT cross-step similarity."""
    from .. import pipeline
    from ..models import resolve

    policy = resolve(model, preset)
    calib, reused, _ = pipeline.calibrate(policy, calib_dir, out, select_layer=select_layer, force=force)
    meta = calib.meta
    click.echo(f"{'reused' if reused else 'wrote'} {calib.path} ({meta['samples']} samples, model {meta['model']})")
    imp = meta["layer_importance"]
    click.echo("layers, least important first: " + " ".join(f"{i}({imp[i]:.4f})" for i in calib.ranking()))
    sim = meta["dit_similarity"]
    rows = [[f"block {j}", " ".join(f"{v:+.2f}" for v in sim["attn"][j]), " ".join(f"{v:+.2f}" for v in sim["mlp"][j])]
            for j in range(len(sim["attn"]))]
    click.echo("DiT cross-step cosine, steps (1,0) (2,1) ...:")
    click.echo(table(["block", "attention", "mlp"], rows))
