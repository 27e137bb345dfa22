"""pi0 as the compile passes see it (passes.family.PassTarget).

- Language stack: the 18 Gemma layers of the VLM over [image tokens of every camera, prompt]; the
  visual span starts at 0 and covers all cameras, so token selection picks across cameras.
- Layer drop: expert layer l reads VLM layer l's K/V. Pairing "drop" drops expert layer l with VLM
  layer l (the pairing stays 1:1, both stacks keep the same depth); pairing "kv" (the commands'
  default for pi0, measured in docs/BENCHMARKS.md) keeps the dropped VLM layer's K/V projections
  (gemma.KVSource) and the whole expert.
- MLP pruning: the VLM's GeGLUs (layers()) and the expert's (head_mlps()), each by its own scores.
- Sampler: the expert's 10 Euler steps over [state; noisy actions], reading the prefix cache; each
  expert layer's attention (its o_proj output) and MLP are the two branches flow-step caching reuses.

Calibration observes the VLM layers through their forward, which the prefix loop calls for every
layer but the last: the last layer's output feeds nothing (only its K/V is read), so calibration
never sees it and gives it importance 1. Under pairing "drop" importance-based layer drop keeps it
(its expert reader would go); under "kv" it is free (free_layers) and dropped first.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .gemma import KVSource
from .sampler import flow_times


class FlowLoop(nn.Module):
    """pi0's sampler unrolled: x <- x + dt * v for t = 1, 0.9, ..., 0.1 (the times are constants)."""

    def __init__(self, model):
        super().__init__()
        self.steps = model.cfg.flow.steps
        self.dt = -1.0 / self.steps
        self.register_buffer("times", torch.tensor(flow_times(self.steps), dtype=torch.float32), persistent=False)

    def start(self, net, condition, noise):
        cache, state = condition
        return noise.float(), (cache, state, *net.suffix_context(cache, 1 + noise.shape[1]))

    def embed(self, net, x, step, context):
        return net.embed_suffix(context[1], x, self.times[step].expand(x.shape[0]))

    def depth(self, net) -> int:
        return len(net.expert.layers)

    def branches(self, net, j, h, context):
        cache, _, cos, sin, masks = context
        layer = net.expert.layers[j]
        attn = layer.attn_branch(h, cos, sin, masks[j], cache.keys[j], cache.values[j])
        return attn, layer.mlp_branch(h + attn)

    def update(self, net, x, h, step, context):
        return x + self.dt * net.action_head(h).float()


class Pi0Target:
    visual_start = 0  # the prefix is [image tokens, prompt]
    # Boolean masks, and the expert reads the prefix K/V in another graph: no proportional weighting.
    key_bias = False
    head_unit = "expert layer"
    condition_width = None  # the expert reads every VLM layer's K/V, not one vector: no condition map

    def __init__(self, model):
        self.model = model
        self.visual_tokens = model.cfg.image_tokens

    def layers(self) -> nn.ModuleList:
        return self.model.vlm.layers

    def keep_layers(self, kept: list[int], pairing: str = "drop") -> None:
        m = self.model
        if m.vlm.kv_sources is not None:
            raise ValueError("layer drop with K/V sources runs once, on a model with every VLM layer")
        if pairing == "kv":  # each dropped layer leaves its K/V source before the next kept layer
            slots: dict[str, list] = {}
            for i, layer in enumerate(m.vlm.layers):
                if i not in kept:
                    slots.setdefault(str(sum(k < i for k in kept)), []).append(KVSource(layer))
            m.vlm.kv_sources = nn.ModuleDict({k: nn.ModuleList(v) for k, v in slots.items()})
        else:
            for i in kept:  # calibration's expert MLP scores are keyed by the original layer
                m.expert.layers[i].mlp.vlacompile_source_index = getattr(m.vlm.layers[i], "vlacompile_source_index", i)
            m.expert.layers = nn.ModuleList(m.expert.layers[i] for i in kept)  # its K/V source is gone
            m.cfg = replace(m.cfg, expert=replace(m.cfg.expert, depth=len(kept)))
        m.vlm.layers = nn.ModuleList(m.vlm.layers[i] for i in kept)
        m.cfg = replace(m.cfg, vlm=replace(m.cfg.vlm, depth=len(kept)))

    def free_layers(self, pairing: str) -> list[int]:
        """Under "kv", the last VLM layer: its attention output and MLP feed nothing (the prefix
        never computes them) and its K/V source stays, so dropping it changes no output and a kept
        slot goes to a layer that computes something. Under "drop" its expert reader goes with it."""
        return [len(self.layers()) - 1] if pairing == "kv" else []

    def head_mlps(self) -> list:
        return [layer.mlp for layer in self.model.expert.layers]

    def attention_probs_of_call(self, i: int, args: tuple, kwargs: dict) -> torch.Tensor:
        h_in, cos, sin, allowed = args[:4]
        return self.model.vlm.attention_probs(i, h_in, allowed, (cos, sin))

    def selector(self):
        return self.model.selector

    def install_selector(self, selector) -> None:
        self.model.selector = selector

    def branch_modules(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(layer.self_attn.o_proj, layer.mlp) for layer in self.model.expert.layers]

    def denoising_loop(self) -> FlowLoop:
        return FlowLoop(self.model)

    def install_denoiser(self, denoiser) -> None:
        self.model.denoiser = denoiser
