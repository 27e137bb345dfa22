"""Parameters and FLOPs per module (vision, llm, action_head), counted from the real modules.

FLOPs come from `torch.utils.flop_counter` while the modules run on meta tensors: no weights are
allocated, so this works for the 7.6 B presets on a laptop, and it counts whatever a rewritten
model really executes. The LLM runs at the static prompt budget (`text_len`), the shape the
compiled graphs use. The counter counts matmuls, convolutions and attention (2 FLOPs per MAC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

MODULES = ("vision", "llm", "action_head")
MODULE_PARTS = {"vision": ("vision_backbone", "projector"), "llm": ("llm_backbone", "condition_map"),
                "action_head": ("action_model",)}


@dataclass(frozen=True)
class ModuleCost:
    module: str
    params: int
    flops: int
    tokens_in: int
    tokens_out: int
    steps: int

    def to_json(self) -> dict:
        return asdict(self)


def count_flops(fn, *args) -> tuple[int, object]:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = fn(*args)
    return counter.get_total_flops(), out


def _params(model, module: str) -> int:
    parts = [getattr(model, part) for part in MODULE_PARTS[module]]
    return sum(p.numel() for part in parts if part is not None for p in part.parameters())


def module_costs(model) -> list[ModuleCost]:
    """`model` must live on the meta device (see models.cogact.build.build_meta)."""
    cfg = model.cfg
    meta = torch.device("meta")
    pixels = torch.empty(1, 6, cfg.dino.image, cfg.dino.image, device=meta)
    ids = torch.zeros(1, 1 + cfg.text_len, dtype=torch.long, device=meta)
    noise = torch.empty(1, cfg.dit.chunk, cfg.dit.action_dim, device=meta)
    vis_flops, visual = count_flops(model.visual_tokens, pixels)
    llm_flops, cognition = count_flops(model.cognition_from_visual, visual, ids)
    act_flops, _ = count_flops(model.act, cognition, noise)
    seq = visual.shape[1] + ids.shape[1]
    return [
        ModuleCost("vision", _params(model, "vision"), vis_flops, cfg.dino.patch_tokens, visual.shape[1], 1),
        ModuleCost("llm", _params(model, "llm"), llm_flops, seq, 1, 1),
        ModuleCost("action_head", _params(model, "action_head"), act_flops, cfg.dit.chunk + 1,
                   cfg.dit.chunk, cfg.sampler.steps),
    ]


def before_after(cfg, config) -> tuple[list[ModuleCost], list[ModuleCost]]:
    """Costs of the reference and of its rewrite by `config` (a CompressConfig), on meta models of
    either family (pi0's rows: models.pi0.costs.module_costs)."""
    from .models import family
    from .passes import compress

    if family(cfg) == "pi0":
        from .models.pi0.build import build_meta
        from .models.pi0.costs import module_costs as costs
    else:
        from .models.cogact.build import build_meta

        costs = module_costs
    reference = build_meta(cfg)
    compressed = compress(reference, config)[0]
    if config.condition is not None:  # fitted on data later; its shape is known now
        from .passes.condition_map import install_shape

        install_shape(compressed)
    return costs(reference), costs(compressed)
