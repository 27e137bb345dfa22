"""Parameters per part of a pi0 preset, counted on the meta device (no weights allocated).

Parts follow the checkpoint: SigLIP `vision`, the linear `projector`, the Gemma `llm` (embedding,
layers, final norm), the action `expert` (layers, final norm) and the `suffix` linears (state_proj,
action_in_proj, action_time_mlp_in/out, action_out_proj). The lm_heads a released file stores are not
part of the model (pi0 never runs them; see checkpoint.py).
"""

from __future__ import annotations

from .config import PRESETS

PARTS = ("vision", "projector", "llm", "expert", "suffix")
_MARKERS = (("vision", ".vision_tower."), ("projector", ".multi_modal_projector."),
            ("llm", ".language_model."), ("expert", ".gemma_expert."))


def part_of(key: str) -> str:
    return next((part for part, marker in _MARKERS if marker in key), "suffix")


def _tally(sizes) -> dict[str, int]:
    counts = dict.fromkeys(PARTS, 0)
    for key, size in sizes:
        counts[part_of(key)] += size
    counts["vlm"] = counts["vision"] + counts["projector"] + counts["llm"]
    counts["total"] = counts["vlm"] + counts["expert"] + counts["suffix"]
    return counts


def param_counts(preset: str) -> dict[str, int]:
    """{part: parameters} plus "vlm" (vision + projector + llm, i.e. PaliGemma) and "total"."""
    from .build import state_shapes

    return _tally((key, shape.numel()) for key, shape in state_shapes(PRESETS[preset].name).items())


def model_param_counts(model) -> dict[str, int]:
    """The same parts for a (possibly rewritten) model, read from its parameters."""
    return _tally((key, p.numel()) for key, p in model.named_parameters())


def module_costs(model) -> list:
    """Parameters and FLOPs per module of one predict call (costs.ModuleCost) for a pi0 model on the
    meta device (or, if small, the CPU: costs.counting_model): "vision" = SigLIP + projector over
    every camera slot, "llm" = the prefix pass through the VLM (every layer's K/V), "action_head" =
    the suffix projections and the expert over the 10 Euler steps. Rows use CogACT's module names so
    reports and tables read the same."""
    import torch

    from ...costs import ModuleCost, count_flops
    from .sampler import euler

    cfg, device = model.cfg, next(model.parameters()).device
    pixels = torch.zeros(1, cfg.cameras, 3, cfg.siglip.image, cfg.siglip.image, device=device)
    image_valid = torch.ones(1, cfg.cameras, dtype=torch.bool, device=device)
    ids = torch.zeros(1, cfg.prompt_len, dtype=torch.long, device=device)
    ids_valid = torch.ones(1, cfg.prompt_len, dtype=torch.bool, device=device)
    state = torch.zeros(1, cfg.max_state_dim, device=device)
    noise = torch.zeros(1, cfg.horizon, cfg.max_action_dim, device=device)
    vis_flops, images = count_flops(model.embed_images, pixels)
    valid = torch.cat([image_valid.repeat_interleave(cfg.siglip.tokens, 1), ids_valid], dim=1)
    h = torch.cat([images, model.vlm.embed(ids)], dim=1)
    llm_flops, cache = count_flops(model.prefix_kv, h, valid)
    velocity = lambda x, t, step: model.velocity(cache, state, x, t)  # noqa: E731
    act_flops, _ = count_flops(euler, velocity, noise, cfg.flow.steps)
    counts = model_param_counts(model)
    return [
        ModuleCost("vision", counts["vision"] + counts["projector"], vis_flops, cfg.image_tokens, images.shape[1], 1),
        ModuleCost("llm", counts["llm"], llm_flops, cfg.prefix_len, cache.keys[-1].shape[2], 1),
        ModuleCost("action_head", counts["expert"] + counts["suffix"], act_flops, cfg.suffix_len, cfg.horizon,
                   cfg.flow.steps),
    ]
