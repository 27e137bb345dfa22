"""Llama-2 backbone (transformers' Llama) and the cognition feature.

The decoder layers are driven by our own loop instead of `LlamaModel.forward`, so that rewrite
passes can act between layers (token selection after layer K) while every layer keeps transformers'
own attention and MLP code. A test pins this loop to `LlamaModel.forward`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

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
    # A select between two scalars: a zeros tensor of the mask's shape would be constant-folded
    # into every exported llm graph as a [1, 1, S, S] initializer (0.33 MB at S = 289).
    zero, low = (torch.tensor(v, dtype=dtype, device=valid.device) for v in (0.0, torch.finfo(dtype).min))
    return torch.where(allowed, zero, low)


def exported_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """transformers' eager attention, but with the scores cast to float32 *before* the softmax.

    `softmax(x, dtype=float32)` on a half tensor exports (TorchScript) as a half-precision Softmax
    followed by a Cast, which is not what a float16 graph must compute. Registered as
    "vlacompile_export" for `set_attn_implementation`.
    """
    from transformers.models.llama.modeling_llama import repeat_kv

    key, value = repeat_kv(key, module.num_key_value_groups), repeat_kv(value, module.num_key_value_groups)
    scores = query @ key.transpose(2, 3) * scaling  # [B, H, S, S]
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = scores.float().softmax(dim=-1).to(query.dtype)
    return (probs @ value).transpose(1, 2).contiguous(), probs


def use_exported_attention(llm) -> None:
    from transformers import AttentionInterface

    AttentionInterface.register("vlacompile_export", exported_attention)
    llm.set_attn_implementation("vlacompile_export")


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
        # float32 whatever the model's precision: the scores pick tokens by rank, and a half-precision
        # rounding can swap two near-tied tokens (costs one layer's q/k projections).
        x = layer.input_layernorm(h_in).float()
        project = lambda lin: F.linear(x, lin.weight.float(), None if lin.bias is None else lin.bias.float())  # noqa: E731
        q = project(attn.q_proj).view(b, s, -1, attn.head_dim).transpose(1, 2)  # [B, H, S, Dh]
        k = project(attn.k_proj).view(b, s, -1, attn.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, *(r.float() for r in rope))
        return (q @ k.transpose(-1, -2) * attn.scaling + mask.float()).softmax(dim=-1)  # [B, H, S, S] float32

    def forward(self, h: torch.Tensor, valid: torch.Tensor, position_ids: torch.Tensor):
        """Input embeddings [B, S, D] -> (final-normed hidden states [B, S', D], valid [B, S']).

        With a token selector installed (passes.token_select), layers before `selector.layer` see
        every token and the rest see the selected ones; S' < S then, and with proportional weighting
        the selector's key bias joins the additive mask of those layers.
        """
        split = self.selector.layer if self.selector is not None else len(self.layers)
        mask, rope = additive_causal_mask(valid, h.dtype), self.rotary(h, position_ids)
        for i in range(len(self.layers)):
            if i == split:
                h, valid, position_ids, key_bias = self.selector(self, h_in, h, valid, position_ids, mask, rope)
                mask, rope = additive_causal_mask(valid, h.dtype), self.rotary(h, position_ids)
                if key_bias is not None:
                    mask = mask + key_bias[:, None, None, :].to(mask.dtype)
            h_in = h
            h = self.run_layer(i, h, mask, position_ids, rope)
        return self.llm.model.norm(h), valid
