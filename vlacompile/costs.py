"""Parameters and FLOPs per module (vision, llm, action_head), counted from the real modules.

FLOPs come from `torch.utils.flop_counter` while the modules run on meta tensors: no weights are
allocated, so this works for the 7.6 B presets on a laptop, and it counts whatever a rewritten
model really executes. A small model runs on real CPU tensors instead: the counter sees the same
operators and shapes (tests/test_costs.py checks the counts are equal), and the meta device's
Python kernels cost seconds per model where a small model's forward costs milliseconds. The LLM
runs at the static prompt budget (`text_len`), the shape the compiled graphs use. The counter
counts matmuls, convolutions and attention (2 FLOPs per MAC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

MODULES = ("vision", "llm", "action_head")
CPU_PARAMS = 50_000_000  # at most this many parameters (200 MB): counted on CPU tensors
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
    from contextlib import nullcontext

    from torch.nn.attention import SDPBackend, sdpa_kernel

    # On CPU tensors, attention otherwise runs a fused kernel the counter has no formula for (it
    # counted none of cogact-tiny's attention): the math backend's two matmuls are what it counts.
    # On the meta device the fused op is counted, and decomposing it would only cost time.
    on_cpu = not any(isinstance(a, torch.Tensor) and a.is_meta for a in args)
    with FlopCounterMode(display=False) as counter, torch.no_grad(), (sdpa_kernel(SDPBackend.MATH) if on_cpu
                                                                       else nullcontext()):
        out = fn(*args)
    return counter.get_total_flops(), out


def _params(model, module: str) -> int:
    parts = [getattr(model, part) for part in MODULE_PARTS[module]]
    return sum(p.numel() for part in parts if part is not None for p in part.parameters())


def module_costs(model) -> list[ModuleCost]:
    """`model` lives on the meta device (see models.cogact.build.build_meta) or, if small, the CPU."""
    cfg = model.cfg
    device = next(model.parameters()).device
    pixels = torch.zeros(1, 6, cfg.dino.image, cfg.dino.image, device=device)
    ids = torch.zeros(1, 1 + cfg.text_len, dtype=torch.long, device=device)
    noise = torch.zeros(1, cfg.dit.chunk, cfg.dit.action_dim, device=device)
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
    """Costs of the reference and of its rewrite by `config` (a CompressConfig), on meta (or small CPU)
    models of either family (pi0's rows: models.pi0.costs.module_costs)."""
    from .models import family
    from .passes import compress

    if family(cfg) == "pi0":
        from .models.pi0.build import build_meta
        from .models.pi0.costs import module_costs as costs
    else:
        from .models.cogact.build import build_meta

        costs = module_costs
    # On the CPU, building and rewriting draw random numbers (initial weights, the passes' arbitrary
    # picks without a calibration): counting must not move the draws a build makes after it.
    with torch.random.fork_rng(devices=[]):
        reference = counting_model(build_meta(cfg))
        compressed = compress(reference, config)[0]
        if config.condition is not None:  # fitted on data later; its shape is known now
            from .passes.condition_map import install_shape

            install_shape(compressed)
        return costs(reference), costs(compressed)


def counting_model(meta_model):
    """The model FLOPs are counted on: `meta_model` itself, or, when it is small, the same
    architecture built on the CPU (randomly initialized: the counts depend on shapes only)."""
    if sum(p.numel() for p in meta_model.parameters()) > CPU_PARAMS:
        return meta_model
    with torch.device("cpu"):
        return type(meta_model)(meta_model.cfg)
