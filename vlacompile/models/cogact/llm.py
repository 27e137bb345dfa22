"""Llama-2 backbone (transformers' Llama) and the cognition feature.

The decoder layers are driven by our own loop instead of `LlamaModel.forward`, so that rewrite
passes can act between layers (token selection after layer K) while every layer keeps transformers'
own attention and MLP code. A test pins this loop to `LlamaModel.forward`.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import LlamaDims


def llama_config(dims: LlamaDims, attn_implementation: str = "sdpa"):
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=dims.hidden,
        intermediate_size=dims.intermediate,
        num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads,
        num_key_value_heads=dims.heads,
        vocab_size=dims.vocab,
        rms_norm_eps=dims.rms_eps,
        rope_theta=dims.rope_theta,
        max_position_embeddings=dims.max_positions,
        tie_word_embeddings=False,
        attn_implementation=attn_implementation,
    )


def additive_causal_mask(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, S] bool of real (non-padding) positions -> [B, 1, S, S] additive mask.

    Padding keys are masked for every query, so no real position ever reads padding.
    """
    s = valid.shape[1]
    causal = torch.ones(s, s, dtype=torch.bool, device=valid.device).tril()
    allowed = causal[None, None] & valid[:, None, None, :]
    return torch.zeros(allowed.shape, dtype=dtype, device=valid.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )


class LLMBackbone(nn.Module):
    def __init__(self, dims: LlamaDims):
        super().__init__()
        from transformers import LlamaForCausalLM

        self.llm = LlamaForCausalLM(llama_config(dims))

    @property
    def layers(self) -> nn.ModuleList:
        return self.llm.model.layers

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.llm.model.embed_tokens(input_ids)

    def rotary(self, h: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.llm.model.rotary_emb(h, position_ids)

    def run_layer(self, i: int, h, mask, position_ids, rope) -> torch.Tensor:
        return self.layers[i](h, attention_mask=mask, position_ids=position_ids, position_embeddings=rope)

    def forward(self, h: torch.Tensor, valid: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings [B, S, D] -> final-normed hidden states [B, S, D]."""
        mask = additive_causal_mask(valid, h.dtype)
        rope = self.rotary(h, position_ids)
        for i in range(len(self.layers)):
            h = self.run_layer(i, h, mask, position_ids, rope)
        return self.llm.model.norm(h)
