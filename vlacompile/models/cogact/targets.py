"""CogACT as the compile passes see it (passes.family.PassTarget): the Llama-2 stack over
[BOS, 256 visual tokens, prompt], and the DiT's guided DDIM loop."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .sampler import ddim_steps, ddim_update, guidance_condition, guided_eps


class DDIMLoop(nn.Module):
    """CogACT's sampler unrolled: the guidance batch [conditional; unconditional], eps from the DiT,
    an eta=0 DDIM update in float32. Timestep embeddings depend only on the fixed schedule, so they
    are constants here (buffers) that an exporter folds."""

    def __init__(self, net, sampler):
        super().__init__()
        self.ddim, self.scale = ddim_steps(sampler), sampler.cfg_scale
        self.steps = len(self.ddim)
        with torch.no_grad():
            t = torch.tensor([float(s.t) for s in self.ddim], device=net.positional_embedding.device)
            self.register_buffer("t_emb", net.t_embedder(t), persistent=False)  # [steps, W]

    def start(self, net, condition, noise):
        return noise.float(), guidance_condition(net, condition.to(net.positional_embedding.dtype))  # z [2B, 1, C]

    def embed(self, net, x, step, z):
        return net.embed(torch.cat([x, x]).to(z.dtype), self.t_emb[step].expand(z.shape[0], -1), z)

    def depth(self, net) -> int:
        return len(net.blocks)

    def branches(self, net, j, h, z):
        block = net.blocks[j]
        attn = block.attn_branch(h)
        return attn, block.mlp_branch(h + attn)

    def update(self, net, x, h, step, z):
        return ddim_update(x, guided_eps(net.head(h), self.scale), self.ddim[step])


class CogACTTarget:
    visual_start = 1  # the sequence is [BOS, visual tokens, prompt]
    key_bias = True  # LLMBackbone adds the selector's key bias to its additive mask
    head_unit = "DiT block"

    def __init__(self, model):
        self.model = model
        self.visual_tokens = model.cfg.visual_tokens
        self.condition_width = model.cfg.llm.hidden  # the DiT reads the cognition feature only

    def condition(self, pixels, input_ids, cognition_index) -> torch.Tensor:
        """The cognition feature [B, D] for a batch of right-padded prompts, as the llm graph computes it."""
        from .export import LLMGraph

        return LLMGraph(self.model)(self.model.visual_tokens(pixels), input_ids, cognition_index)

    def install_condition_map(self, module) -> None:
        self.model.condition_map = module

    def layers(self) -> nn.ModuleList:
        return self.model.llm_backbone.layers

    def keep_layers(self, kept: list[int], pairing: str = "drop") -> None:
        if pairing != "drop":
            from ...errors import UserError

            raise UserError(f"--expert-pairing {pairing} is for pi0, whose expert reads every VLM layer's K/V; "
                            "CogACT's action head reads the cognition feature only (leave it at drop)")
        m = self.model
        layers = nn.ModuleList(m.llm_backbone.layers[i] for i in kept)
        for position, layer in enumerate(layers):
            layer.self_attn.layer_idx = position  # transformers indexes its caches by it
        m.llm_backbone.llm.model.layers = layers
        m.llm_backbone.llm.config.num_hidden_layers = len(layers)
        m.cfg = replace(m.cfg, llm=replace(m.cfg.llm, layers=len(layers)))

    def free_layers(self, pairing: str) -> list[int]:
        return []  # every layer's output reaches the cognition feature

    def head_mlps(self) -> list:
        return []  # the DiT's MLPs are plain GELU; EfficientVLA prunes the LLM's

    def attention_probs_of_call(self, i: int, args: tuple, kwargs: dict) -> torch.Tensor:
        mask, rope = kwargs["attention_mask"], kwargs["position_embeddings"]
        return self.model.llm_backbone.attention_probs(i, args[0], mask, rope)

    def selector(self):
        return self.model.llm_backbone.selector

    def install_selector(self, selector) -> None:
        self.model.llm_backbone.selector = selector

    def branch_modules(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(block.attn, block.mlp) for block in self.model.action_model.net.blocks]

    def denoising_loop(self) -> DDIMLoop:
        return DDIMLoop(self.model.action_model.net, self.model.cfg.sampler)

    def install_denoiser(self, denoiser) -> None:
        self.model.action_model.denoiser = denoiser
