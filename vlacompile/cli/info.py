from __future__ import annotations

import json

import click

from .compile_options import compile_options, config_for
from .options import human, json_option, model_option, preset_option, table


def _reduction(before: int, after: int) -> str:
    return f"{human(after)} ({after / before:.1%})" if before else "0"


@click.command()
@model_option
@preset_option
@compile_options
@json_option
def info(model, preset, as_json, **flags):
    """Parameters, tokens, steps and FLOPs per module for one predict call, reference and compressed.

    Counts do not depend on which layers or channels go, so this needs no weights or calibration.
    """
    from ..costs import before_after
    from ..models import family, resolve_config
    from ..sweep import label

    cfg = resolve_config(model, preset)
    config = config_for(cfg, **flags)
    ref, new = before_after(cfg, config)
    if as_json:
        total = lambda cs: {"params": sum(c.params for c in cs), "flops": sum(c.flops for c in cs)}  # noqa: E731
        budget = cfg.prompt_len if family(cfg) == "pi0" else cfg.text_len
        click.echo(json.dumps({"model": cfg.name, "text_len": budget, "config": config.to_json(),
                               "modules": {c.module: c.to_json() for c in ref}, "total": total(ref),
                               "compressed": {"modules": {c.module: c.to_json() for c in new}, "total": total(new)}}))
        return
    click.echo(_about(cfg))
    click.echo(f"compressed: {label(config, cfg)} (LLM layers, visual tokens by {flags['token_method']}, MLP sparsity, "
               "cache interval; +map: the condition map)")
    rows = [[r.module, human(r.params), _reduction(r.params, n.params), _tokens(r, n), r.steps, human(r.flops, "FLOP"), f"{human(n.flops, 'FLOP')} ({n.flops / r.flops:.1%})"]
            for r, n in zip(ref, new)]
    tr, tn = sum(c.flops for c in ref), sum(c.flops for c in new)
    pr, pn = sum(c.params for c in ref), sum(c.params for c in new)
    rows.append(["total", human(pr), _reduction(pr, pn), "", "", human(tr, "FLOP"), f"{human(tn, 'FLOP')} ({tn / tr:.1%})"])
    click.echo(table(["module", "params", "compressed", "tokens", "steps", "FLOPs", "compressed FLOPs"], rows))


def _tokens(ref, new) -> str:
    """Tokens in -> out of the reference module, and of the compressed one where they differ (pi0's
    prefix leaves the selection with fewer tokens than it took in)."""
    text = f"{ref.tokens_in} -> {ref.tokens_out}"
    if (new.tokens_in, new.tokens_out) != (ref.tokens_in, ref.tokens_out):
        text += f" (compressed: {new.tokens_in} -> {new.tokens_out})"
    return text


def _about(cfg) -> str:
    from ..models import family

    if family(cfg) == "pi0":
        scale = cfg.flow.noise_scale
        return (f"{cfg.name}: pi0, {cfg.vlm.depth} VLM layers paired with {cfg.expert.depth} action-expert layers, "
                f"{cfg.image_tokens} visual tokens ({cfg.cameras} cameras x {cfg.siglip.tokens}), prompt "
                f"{cfg.prompt_len} tokens, {cfg.horizon}-step chunk, {cfg.flow.steps} Euler flow steps from "
                f"standard-normal noise scaled by {scale:g}" + ("" if scale == 1 else " (pi0's: 1)"))
    return (f"{cfg.name}: {cfg.dit_variant} action head, {cfg.llm.layers} LLM layers, {cfg.visual_tokens} visual "
            f"tokens, prompt budget {1 + cfg.text_len} tokens (BOS and template included)")
