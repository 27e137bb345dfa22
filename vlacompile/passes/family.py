"""The interface between a model family and the rewrite passes (and calibration).

The passes never name a family's attributes (`llm_backbone`, `action_model.net`, ...). They ask
the model for its `PassTarget` (`model.pass_target()`), which each family declares in one small
class beside its model (models/cogact/targets.py). A new family implements these members; no
pass changes. What the passes rely on:

- a language stack of decoder layers, each with a gated MLP (`mlp.gate_proj`, `mlp.up_proj`,
  `mlp.down_proj`: SwiGLU in Llama, GeGLU in Gemma), which layer drop and MLP pruning shrink;
- a contiguous span of visual tokens in that stack's sequence, attention probabilities at any
  layer, and a place for the token selector: the stack calls
  `selector(stack, h_in, h_out, valid, positions, mask, rope)` before layer `selector.layer`
  (it returns h, valid, positions and a key bias [B, S'] or None; a stack that declares
  `key_bias` adds it to the attention logits of the later layers), and
  `stack.attention_probs(i, h_in, mask, rope)` gives layer i's attention;
- optionally, one conditioning vector that the action head reads (CogACT's cognition feature),
  which the condition map corrects: `condition_width` (None: the head reads no single vector),
  `condition(*inputs)` computing it for a batch of the family's `condition_inputs`, and a place
  for the map;
- an iterative action sampler whose blocks have two residual branches (attention, then MLP), as a
  `DenoisingLoop`, the modules that compute those branches, and a place for the cached loop that
  replaces the sampler.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class DenoisingLoop(Protocol):
    """An action sampler unrolled into `steps` iterations of embed -> blocks -> update.

    Block j adds `attn` then `mlp` to its input h, where (attn, mlp) = branches(net, j, h, context)
    (`mlp` is computed from h + attn). The sampler's weights (`net`) come in at every call, so a
    loop installed in a model holds no second copy of them."""

    steps: int

    def start(self, net, condition, noise: torch.Tensor) -> tuple[torch.Tensor, object]:
        """(x, context): the sampler's state before its first step, and what every step reads."""

    def embed(self, net, x: torch.Tensor, step: int, context) -> torch.Tensor:
        """The input h of block 0 at this step."""

    def depth(self, net) -> int:
        """Blocks per step."""

    def branches(self, net, j: int, h: torch.Tensor, context) -> tuple[torch.Tensor, torch.Tensor]:
        """Block j's two residual-branch outputs for input h."""

    def update(self, net, x: torch.Tensor, h: torch.Tensor, step: int, context) -> torch.Tensor:
        """The sampler's next x from the last block's output h (the output head and the solver)."""


class PassTarget(Protocol):
    """One model seen by the passes. Methods that change the model change it in place (the passes
    call them on their own copy)."""

    visual_start: int  # position of the first visual token in the language stack's sequence
    visual_tokens: int
    head_unit: str  # what the family calls one block of its action sampler, in reports ("DiT block")
    key_bias: bool  # whether the stack applies the selector's key bias (proportional token weighting)
    condition_width: int | None  # width of the one vector the action head is conditioned on; None: none

    def condition(self, *inputs) -> torch.Tensor:
        """The conditioning vector [B, condition_width] of a batch of inputs (the family's export
        declaration's `condition_inputs`), through the installed condition map if any."""

    def install_condition_map(self, module: nn.Module) -> None:
        """Make `module` ([B, W] -> [B, W]) apply to the conditioning vector wherever it is computed."""

    def layers(self) -> nn.ModuleList:
        """The language stack's decoder layers, in model order."""

    def keep_layers(self, kept: list[int], pairing: str = "drop") -> None:
        """Make the stack these layers (indices into layers()), renumbered, with the config saying so.
        `pairing`: what happens to what reads a dropped layer's K/V (a family without such a reader
        takes "drop" only; see LayerDropConfig)."""

    def free_layers(self, pairing: str) -> list[int]:
        """Layers (indices into layers()) whose drop under `pairing` changes no output: what they
        compute feeds nothing that the pairing does not keep. Layer drop ranks them below every other."""

    def head_mlps(self) -> list[nn.Module]:
        """Gated MLPs (gate_proj, up_proj, down_proj) of the action head that MLP pruning prunes too,
        with calibration's scores for them (pi0's expert layers; CogACT's DiT has none)."""

    def attention_probs_of_call(self, i: int, args: tuple, kwargs: dict) -> torch.Tensor:
        """Layer i's attention probabilities [B, H, S, S] from the arguments it was called with (for
        calibration's forward hooks)."""

    def selector(self) -> nn.Module | None:
        """The installed token selector, if any."""

    def install_selector(self, selector: nn.Module) -> None: ...

    def branch_modules(self) -> list[tuple[nn.Module, nn.Module]]:
        """Per block of the action sampler, the modules whose outputs are its attention and MLP
        branches (calibration hooks them to measure how much they change from step to step)."""

    def denoising_loop(self) -> nn.Module:
        """A new DenoisingLoop (an nn.Module: it may hold constants such as step embeddings)."""

    def install_denoiser(self, denoiser: nn.Module) -> None:
        """Make `denoiser(net, condition, noise)` the model's action sampler; the model passes the
        module holding the sampler's weights as `net`."""


def target_of(model) -> PassTarget:
    from ..errors import UserError

    if not hasattr(model, "pass_target"):
        raise UserError(f"{type(model).__name__} declares no PassTarget, so the compile passes cannot rewrite it")
    return model.pass_target()
