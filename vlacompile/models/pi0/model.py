"""The pi0 module: LeRobot's parameter layout, and the three computations pi0 is made of.

- `prefix_kv`: images + prompt through the VLM once -> every layer's K/V (the prefix cache);
- `velocity`: the expert over [state; noisy actions] reading that cache -> the flow velocity;
- `joint_velocity`: the same velocity with prefix and suffix in one joint attention per layer and
  no cache (training's forward, and the reference the cached path is tested against).

Parameter names are LeRobot's `PI0Pytorch` ones (without the policy's `model.` prefix): the nested
holders exist only for that. `vision_tower`, `projector`, `vlm` and `expert` reach into them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .attention import attend
from .config import Pi0Config
from .gemma import GemmaLayer, GemmaStack
from .masks import joint_mask, positions, prefix_mask, suffix_mask
from .naming import holder
from .sampler import euler, time_embedding
from .siglip import SiglipVisionTower


@dataclass
class PrefixKV:
    """The prefix cache the expert reads: one entry per VLM layer, computed once per observation.

    keys, values: [B, KV, P_l, Dh] per layer; keys are after RoPE, so positions are baked in.
    valid: [B, P_l] bool per layer, the cached tokens a suffix query may read (P_l shrinks after a
        token selector). offset: [B] long, the RoPE position of the state token (= the number of
        valid prefix tokens before any selection).
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    valid: list[torch.Tensor]
    offset: torch.Tensor

    def append(self, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor) -> None:
        self.keys.append(k)
        self.values.append(v)
        self.valid.append(valid)


class Pi0(nn.Module):
    def __init__(self, cfg: Pi0Config):
        super().__init__()
        self.cfg = cfg
        vlm = holder(
            vision_tower=SiglipVisionTower(cfg.siglip),
            multi_modal_projector=holder(linear=nn.Linear(cfg.siglip.width, cfg.vlm.width)),
            language_model=GemmaStack(cfg.vlm),
        )
        expert = holder(model=GemmaStack(cfg.expert))
        self.paligemma_with_expert = holder(paligemma=holder(model=vlm), gemma_expert=expert)
        width = cfg.expert.width
        self.state_proj = nn.Linear(cfg.max_state_dim, width)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, width)
        self.action_time_mlp_in = nn.Linear(2 * width, width)
        self.action_time_mlp_out = nn.Linear(width, width)
        self.action_out_proj = nn.Linear(width, cfg.max_action_dim)
        # Token selection between VLM layers (set by the pass through targets.Pi0Target): called as
        # selector(vlm, h_in, h, valid, pos, allowed, rope) -> (h, valid, pos, key bias) before layer
        # `selector.layer`; the bias is None here (PassTarget.key_bias is False for pi0).
        self.selector: nn.Module | None = None

    @property
    def vision_tower(self) -> SiglipVisionTower:
        return self.paligemma_with_expert.paligemma.model.vision_tower

    @property
    def projector(self) -> nn.Linear:
        return self.paligemma_with_expert.paligemma.model.multi_modal_projector.linear

    @property
    def vlm(self) -> GemmaStack:
        return self.paligemma_with_expert.paligemma.model.language_model

    @property
    def expert(self) -> GemmaStack:
        return self.paligemma_with_expert.gemma_expert.model

    # -- prefix ---------------------------------------------------------------------------------

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, C, 3, 224, 224] in [-1, 1] -> image tokens [B, C * 256, W], cameras in slot order.

        Image tokens are not scaled by sqrt(W) (only language embeddings are)."""
        b, c = pixels.shape[:2]
        tokens = self.projector(self.vision_tower(pixels.flatten(0, 1)))  # [B * C, 256, W]
        return tokens.reshape(b, c * tokens.shape[1], -1)

    def embed_prefix(self, pixels, image_valid, ids, ids_valid) -> tuple[torch.Tensor, torch.Tensor]:
        """-> h [B, P, W] = [image tokens; prompt tokens], valid [B, P].

        image_valid [B, C] bool (False: an absent camera); ids, ids_valid [B, L] (right padding)."""
        return self.join_prefix(self.embed_images(pixels), image_valid, ids, ids_valid)

    def join_prefix(self, images, image_valid, ids, ids_valid) -> tuple[torch.Tensor, torch.Tensor]:
        """Image tokens [B, C * 256, W] (embed_images) and the prompt -> (h [B, P, W], valid [B, P])."""
        per_camera = images.shape[1] // image_valid.shape[1]
        valid = torch.cat([image_valid.bool().repeat_interleave(per_camera, dim=1), ids_valid.bool()], dim=1)
        return torch.cat([images, self.vlm.embed(ids).to(images.dtype)], dim=1), valid

    def prefix_kv(self, h: torch.Tensor, valid: torch.Tensor) -> PrefixKV:
        """Prefix embeddings [B, P, W] and validity [B, P] -> every VLM layer's K/V."""
        offset = valid.long().sum(-1)
        pos = positions(valid)
        layers = self.vlm.layers
        allowed, (cos, sin) = prefix_mask(valid), self.vlm.rope(pos)
        cache = PrefixKV([], [], [], offset)
        h_in = h
        tail = self.vlm.sources_before(len(layers))  # K/V sources after the last kept layer
        for i, layer in enumerate(layers):
            if self.selector is not None and i == self.selector.layer:
                h, valid, pos, _ = self.selector(self.vlm, h_in, h, valid, pos, allowed, (cos, sin))
                allowed, (cos, sin) = prefix_mask(valid), self.vlm.rope(pos)
            dtype = layer.input_layernorm.weight.dtype  # half graphs keep the layers before the selection float
            if h.dtype != dtype:  # decided when traced: a float32 graph gets no Cast
                h = h.to(dtype)
            h_in = h
            for source in self.vlm.sources_before(i):  # dropped layers whose expert reader stays
                cache.append(*source.kv(h, cos, sin), valid)
            q, k, v = layer.qkv(h, cos, sin)
            cache.append(k, v, valid)
            if i + 1 < len(layers) or tail:  # the last layer's attention output, MLP and final norm feed nothing
                h = layer(h, cos, sin, allowed, qkv=(q, k, v))  # through forward: calibration's hooks see it
        for source in tail:
            cache.append(*source.kv(h, cos, sin), valid)
        return cache

    # -- suffix ---------------------------------------------------------------------------------

    def embed_suffix(self, state: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """state [B, 32], noisy actions [B, 50, 32], t [B] -> [state token; action tokens] [B, 51, We]."""
        dtype = self.action_in_proj.weight.dtype
        actions = self.action_in_proj(x_t.to(dtype))  # [B, 50, We]
        f = self.cfg.flow
        time = time_embedding(t, actions.shape[-1], f.min_period, f.max_period).to(dtype)  # [B, We]
        fused = torch.cat([actions, time[:, None].expand_as(actions)], dim=-1)  # [B, 50, 2 We]
        fused = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(fused)))  # swish
        return torch.cat([self.state_proj(state.to(dtype))[:, None], fused], dim=1)

    def action_head(self, hs: torch.Tensor) -> torch.Tensor:
        """Expert output [B, 51, We] -> velocity [B, 50, 32] float32 (the state token is dropped)."""
        out = self.expert.norm(hs)[:, 1:]
        return self.action_out_proj(out.to(self.action_out_proj.weight.dtype)).float()

    def suffix_context(self, cache: PrefixKV, length: int):
        """(cos, sin, per-layer masks [B, S, P_l + S]) for a suffix of `length` tokens reading `cache`."""
        if len(self.expert.layers) != len(cache.keys):
            raise ValueError(f"the expert has {len(self.expert.layers)} layers but the prefix cache {len(cache.keys)}")
        cos, sin = self.expert.rope(cache.offset[:, None] + torch.arange(length, device=cache.offset.device))
        memo: dict[int, torch.Tensor] = {}  # layers share one validity tensor unless a selector cut the prefix
        for valid in cache.valid:
            if id(valid) not in memo:
                memo[id(valid)] = suffix_mask(valid, length - 1)
        return cos, sin, [memo[id(valid)] for valid in cache.valid]

    def velocity(self, cache: PrefixKV, state, x_t, t) -> torch.Tensor:
        """The flow velocity at (x_t, t), reading the prefix cache: expert layer l reads VLM layer l's K/V."""
        return self.action_head(self.suffix_hidden(cache, state, x_t, t))

    def suffix_hidden(self, cache: PrefixKV, state, x_t, t, inputs: dict | None = None) -> torch.Tensor:
        """The expert's last hidden states [B, 51, We], before its final norm (training also reads the
        state token's, which depends on the observation alone: it attends to the prefix and itself).
        `inputs`, if given, receives each expert layer's input {layer index: [B, 51, We]} (the pointer loss)."""
        hs = self.embed_suffix(state, x_t, t)
        cos, sin, masks = self.suffix_context(cache, hs.shape[1])
        for i, (layer, k, v, mask) in enumerate(zip(self.expert.layers, cache.keys, cache.values, masks)):
            if inputs is not None:
                inputs[i] = hs
            hs = layer(hs, cos, sin, mask, k, v)
        return hs

    # -- without a cache ------------------------------------------------------------------------

    def joint_velocity(self, h: torch.Tensor, valid: torch.Tensor, state, x_t, t) -> torch.Tensor:
        """The velocity with [prefix; suffix] in one joint attention per layer (no cache, no selector)."""
        hs = self.embed_suffix(state, x_t, t)
        allowed = joint_mask(valid, hs.shape[1] - 1)  # [B, P + S, P + S]
        ones = torch.ones(hs.shape[:2], dtype=torch.bool, device=hs.device)
        cos, sin = self.vlm.rope(positions(torch.cat([valid, ones], dim=1)))
        for vlm_layer, expert_layer in zip(self.vlm.layers, self.expert.layers, strict=True):
            h, hs = joint_layer(vlm_layer, expert_layer, h, hs, cos, sin, allowed)
        return self.action_head(hs)

    @torch.no_grad()
    def forward(self, pixels, image_valid, ids, ids_valid, state, noise) -> torch.Tensor:
        """Observation and initial noise [B, 50, 32] -> normalized actions [B, 50, 32] (float32)."""
        return self.sample(self.prefix_kv(*self.embed_prefix(pixels, image_valid, ids, ids_valid)), state, noise)

    def sample(self, cache: PrefixKV, state, noise) -> torch.Tensor:
        """The flow loop from the prefix cache: standard-normal noise [B, 50, 32] -> normalized actions
        (float32)."""
        noise = self.initial_noise(noise)
        denoiser = getattr(self, "denoiser", None)  # set by the flow-step caching pass
        if denoiser is not None:
            return denoiser(self, (cache, state), noise)
        return euler(lambda x, t, step: self.velocity(cache, state, x, t), noise, self.cfg.flow.steps)

    def sampler_settings(self) -> dict:
        """What, besides the weights, decides the actions of an input and noise (calibration keys it)."""
        return asdict(self.cfg.flow)

    def initial_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """x at t = 1 from standard-normal noise: scaled by the sampling temperature (config.FlowConfig).
        At pi0's scale of 1 nothing is traced, so such graphs are what they were."""
        scale = self.cfg.flow.noise_scale
        return noise if scale == 1.0 else noise * scale

    def pass_target(self):
        """What the compile passes may change, and how (passes.family)."""
        from .targets import Pi0Target

        return Pi0Target(self)


def joint_layer(vlm_layer: GemmaLayer, expert_layer: GemmaLayer, h, hs, cos, sin, allowed):
    """One layer of both stacks: each normalizes and projects its own tokens with its own weights, one
    attention runs over the concatenation, and each applies its own o_proj, residual and MLP."""
    p = h.shape[1]
    qp, kp, vp = vlm_layer.qkv(h, cos[:, :p], sin[:, :p])
    qs, ks, vs = expert_layer.qkv(hs, cos[:, p:], sin[:, p:])
    out = attend(torch.cat([qp, qs], 2), torch.cat([kp, ks], 2), torch.cat([vp, vs], 2), allowed)  # [B, P + S, H Dh]
    h = h + vlm_layer.self_attn.o_proj(out[:, :p])
    hs = hs + expert_layer.self_attn.o_proj(out[:, p:])
    return h + vlm_layer.mlp_branch(h), hs + expert_layer.mlp_branch(hs)
