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
        self.selector: nn.Module | None = None  # set by the token-selection pass

    @property
    def layers(self) -> nn.ModuleList:
        return self.llm.model.layers

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.llm.model.embed_tokens(input_ids)

    def rotary(self, h: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.llm.model.rotary_emb(h, position_ids)

    def run_layer(self, i: int, h, mask, position_ids, rope) -> torch.Tensor:
        return self.layers[i](h, attention_mask=mask, position_ids=position_ids, position_embeddings=rope)

    def attention_probs(self, i: int, h_in: torch.Tensor, mask, rope) -> torch.Tensor:
        """Layer i's attention probabilities [B, H, S, S], computed explicitly from its input.

        Only the token-selection scoring needs them; the layer itself keeps its fast attention.
        """
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        layer = self.layers[i]
        attn, (b, s, _) = layer.self_attn, h_in.shape
        x = layer.input_layernorm(h_in)
        q = attn.q_proj(x).view(b, s, -1, attn.head_dim).transpose(1, 2)  # [B, H, S, Dh]
        k = attn.k_proj(x).view(b, s, -1, attn.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, *rope)
        return (q @ k.transpose(-1, -2) * attn.scaling + mask).softmax(dim=-1)

    def forward(self, h: torch.Tensor, valid: torch.Tensor, position_ids: torch.Tensor):
        """Input embeddings [B, S, D] -> (final-normed hidden states [B, S', D], valid [B, S']).

        With a token selector installed (passes.token_select), layers before `selector.layer` see
        every token and the rest see the selected ones; S' < S then.
        """
        split = self.selector.layer if self.selector is not None else len(self.layers)
        mask, rope = additive_causal_mask(valid, h.dtype), self.rotary(h, position_ids)
        for i in range(len(self.layers)):
            if i == split:
                h, valid, position_ids = self.selector(self, h_in, h, valid, position_ids, mask, rope)
                mask, rope = additive_causal_mask(valid, h.dtype), self.rotary(h, position_ids)
            h_in = h
            h = self.run_layer(i, h, mask, position_ids, rope)
        return self.llm.model.norm(h), valid
