from __future__ import annotations

import json

import click

from .options import human, json_option, model_option, preset_option, table


@click.command()
@model_option
@preset_option
@json_option
def info(model, preset, as_json):
    """Parameters, tokens, denoising steps and FLOPs per module, for one predict call."""
    from ..costs import module_costs
    from ..models import resolve_config
    from ..models.cogact.build import build_meta

    cfg = resolve_config(model, preset)
    costs = module_costs(build_meta(cfg))
    if as_json:
        click.echo(json.dumps({"model": cfg.name, "text_len": cfg.text_len,
                               "modules": {c.module: c.to_json() for c in costs},
                               "total": {"params": sum(c.params for c in costs), "flops": sum(c.flops for c in costs)}}))
        return
    rows = [[c.module, human(c.params), c.tokens_in, c.tokens_out, c.steps, human(c.flops, "FLOP")] for c in costs]
    rows.append(["total", human(sum(c.params for c in costs)), "", "", "", human(sum(c.flops for c in costs), "FLOP")])
    click.echo(f"{cfg.name}: {cfg.dit_variant} action head, {cfg.llm.layers} LLM layers, "
               f"{cfg.visual_tokens} visual tokens, prompt budget {cfg.text_len} tokens")
    click.echo(table(["module", "params", "tokens in", "tokens out", "steps", "per predict"], rows))
