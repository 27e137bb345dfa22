"""Building CogACT models: on the meta device, from a state dict, or the embedded synthetic default.

Models are always built on the meta device and then given weights with `assign=True`, so nothing
large is allocated twice (a 7.6 B checkpoint is 30 GB in fp32).
"""

from __future__ import annotations

import functools

import torch

from ...errors import UserError
from .config import PRESETS, CogACTConfig
from .model import CogACT
from .synthetic import synthesize_state


def build_meta(cfg: CogACTConfig) -> CogACT:
    with torch.device("meta"):
        return CogACT(cfg)


@functools.cache
def state_shapes(preset: str) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in build_meta(PRESETS[preset]).state_dict().items()}


def _rebuild_rotary(model: CogACT) -> None:
    """The rotary tables are non-persistent buffers: not in any checkpoint, so rebuild them on CPU."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    inner = model.llm_backbone.llm.model
    with torch.device("cpu"):
        inner.rotary_emb = LlamaRotaryEmbedding(inner.config)


def mismatch_report(expected: dict[str, torch.Size], state: dict[str, torch.Tensor], limit: int = 3) -> str:
    """'' when `state` has exactly the expected keys and shapes, else the first offenders per kind."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k])}"
        for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])
    ]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{label}: {', '.join(items[:limit])}{more}")
    return "; ".join(parts)


def from_state(cfg: CogACTConfig, state: dict[str, torch.Tensor], source: str = "state dict") -> CogACT:
    """A model holding exactly `state`; any missing, extra or misshapen key is one UserError."""
    problems = mismatch_report(state_shapes(cfg.name), state)
    if problems:
        raise UserError(f"{source} does not match {cfg.name}: {problems}")
    model = build_meta(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    _rebuild_rotary(model)
    return model.eval()


def synthetic(cfg: CogACTConfig) -> CogACT:
    """The deterministic synthetic model of a preset (the embedded default is cogact-tiny)."""
    return from_state(cfg, synthesize_state(state_shapes(cfg.name), cfg.seed, cfg.llm.layers), f"{cfg.name} synthetic")


def infer_preset(state: dict[str, torch.Tensor], source: str, candidates=None) -> CogACTConfig:
    """The preset whose keys and shapes the weights match exactly."""
    names = candidates or list(PRESETS)
    reports = {}
    for name in names:
        reports[name] = mismatch_report(state_shapes(name), state)
        if not reports[name]:
            return PRESETS[name]
    closest = min(reports, key=lambda n: len(reports[n]))
    raise UserError(
        f"{source} matches no preset ({', '.join(names)}); closest is {closest}: {reports[closest]}. "
        "Check the checkpoint is a CogACT one, or pass --model PRESET to see the full comparison"
    )
