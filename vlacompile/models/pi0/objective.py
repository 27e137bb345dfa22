"""pi0's training objective (flow matching), for training `pi0-tiny` here.

Flow matching as openpi and LeRobot train pi0: for normalized actions a and noise e, a time t in
(0, 1] gives x_t = t e + (1 - t) a, and the network regresses the velocity u = e - a (MSE). t is
drawn from Beta(1.5, 1), rescaled to [0.001, 1], so noisier times, where the flow is least determined,
are drawn more. Beta(1.5, 1) has CDF t^1.5, so it is drawn as U^(1 / 1.5) from a seeded generator.

The loss covers the real action dimensions only, as LeRobot truncates it (docs/PI0.md §6): the zero
padding up to 32 carries no signal.

Two economies, neither changing what is learned:
- The prefix (images + prompt) cannot read the suffix, so its K/V cache is computed once per batch and
  shared by `repeats` (t, noise) draws, as CogACT's repeated diffusion steps share a cognition feature.
- Grounding, as for CogACT (models/cogact/objective.py says why): a linear head, thrown away after
  training, regresses where the named objects are relative to the gripper, here from the expert's
  final state token. That token reads the prefix and the state only, so it is the observation's
  summary the action tokens consult, and one (t, noise) draw's copy serves all.

Per-patch loss (`patches`, off in the shipped run): CogACT's recipe (models/cogact/objective.py) on
pi0's image tokens after the projector: a head thrown away after training classifies the kind and
colour under each patch and regresses the centre of what it shows. It is what taught `cogact-tiny`'s
towers to see objects (docs/BENCHMARKS.md "The vision stage"); with `--vision-steps` it also runs
alone first (the recipe's vision_loss).

Draws at the sampling temperature (`temperature_draws`, off in pi0's objective): pi0-tiny samples
from the standard-normal noise times 0 (FlowConfig.noise_scale), a start pi0's objective never
trains from: at t = 1 it sees noise of norm about sqrt(50 * 32), not the origin. This share of the
draws takes its noise through the same scaling, so the flow the sampler follows (from 0, the line
x_t = (1 - t) a) is one the network was trained on; the other draws keep pi0's.

Pointer loss (`pointer`, off in the shipped run): CogACT's (models/cogact/objective.py says why) on
pi0's summary query, the expert's state token: at each of `pointer_layers`, head 0 of its attention
should fall on the patches of the object the instruction names first and head 1 on the second's.
Without it pi0-tiny goes to an object nobody named in about half of its held-out episodes
(docs/BENCHMARKS.md). Expert layer 0 is not among them: its state token has read nothing yet, so its
query cannot know which object the words name. The keys it attends to are the VLM's, so the term
also teaches the image tokens to carry which object the prompt names (the prefix is bidirectional).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import Pi0, PrefixKV

T_MIN = 0.001
BETA_ALPHA = 1.5


@dataclass(frozen=True)
class Objective:
    repeats: int = 4  # (t, noise) draws per prefix: 4 cost 1.3 s a step at batch 16 here, 8 cost 4 s
    grounding: float = 1.0  # weight of the grounding loss; 0 is pi0's objective alone
    patches: float = 0.0  # weight of the per-patch loss on the image tokens; 0: none (the shipped run's)
    pointer: float = 0.0  # weight of the pointer loss on the state token's attention; 0: none (the shipped run's)
    pointer_layers: tuple[int, ...] = (1, 6, 11, 17)  # the expert layers whose attention it reads
    # share of the (t, noise) draws whose noise is scaled by the sampling temperature (FlowConfig.noise_scale)
    temperature_draws: float = 0.0


def flow_times(n: int, g: torch.Generator) -> torch.Tensor:
    """[n] times from Beta(1.5, 1), rescaled to [0.001, 1]."""
    return torch.rand(n, generator=g, device=g.device).pow(1.0 / BETA_ALPHA) * (1.0 - T_MIN) + T_MIN


def repeat_cache(cache: PrefixKV, r: int) -> PrefixKV:
    """Each batch entry's cache `r` times in a row (matching Tensor.repeat_interleave on the batch)."""
    def rep(ts):
        return [t.repeat_interleave(r, 0) for t in ts]

    return PrefixKV(rep(cache.keys), rep(cache.values), rep(cache.valid), cache.offset.repeat_interleave(r, 0))


def training_loss(model: Pi0, heads: torch.nn.ModuleDict, pixels, image_valid, ids, ids_valid, state, actions,
                  grounding, patches, named, action_dim: int, objective: Objective, g: torch.Generator):
    """(total, flow MSE, grounding MSE, patch loss, pointer loss) of one batch. actions [B, 50, 32]
    normalized (zero-padded), state [B, 32] normalized, grounding [B, G]; `action_dim` real action
    dimensions. `heads["grounding"]` reads the expert's state token; with `objective.patches`,
    `heads["patches"]` reads the first camera's image tokens against `patches` [B, 256, 5]; with
    `objective.pointer`, pointer_loss reads `named` [B, 256] (the first camera's patch roles). A term
    that is off is 0."""
    from ...sim.patch_head import patch_loss

    r = objective.repeats
    images = model.embed_images(pixels)
    prefix = model.prefix_kv(*model.join_prefix(images, image_valid, ids, ids_valid))
    a = actions.repeat_interleave(r, 0)
    t = flow_times(a.shape[0], g)
    noise = torch.randn(a.shape, generator=g, device=g.device)
    if objective.temperature_draws:
        at = torch.rand(a.shape[0], generator=g, device=g.device) < objective.temperature_draws
        noise = torch.where(at[:, None, None], model.initial_noise(noise), noise)
    x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * a
    inputs = {} if objective.pointer else None
    hs = model.suffix_hidden(repeat_cache(prefix, r), state.repeat_interleave(r, 0), x_t, t, inputs)
    v = model.action_head(hs)
    flow = F.mse_loss(v[..., :action_dim], (noise - a)[..., :action_dim])
    summary = model.expert.norm(hs[::r, 0])  # the state token of each observation's first draw
    ground = F.mse_loss(heads["grounding"](summary), grounding)
    zero = torch.zeros((), device=flow.device)
    dense = patch_loss(heads["patches"], images[:, :patches.shape[1]], patches) if objective.patches else zero
    point = pointer_loss(model, prefix, {i: inputs[i][::r] for i in objective.pointer_layers}, named) \
        if objective.pointer else zero
    total = flow + objective.grounding * ground + objective.patches * dense + objective.pointer * point
    return total, flow, ground, dense, point


def pointer_loss(model: Pi0, prefix: PrefixKV, inputs: dict, named: torch.Tensor) -> torch.Tensor:
    """Mean over the layers in `inputs` ({expert layer: its input [B, S, We]}) and the named objects of
    -log of the share of the state token's attention that the object's head gives its patches
    (sim.patch_head.named_share_losses). The state token reads the prefix and itself only, so its
    attention is computed from it alone; `named` [B, V] covers the prefix's first V tokens (the
    first camera's)."""
    from ...sim.patch_head import named_share_losses
    from .attention import attention_probs

    cos, sin, masks = model.suffix_context(prefix, 1)  # the state token alone
    losses = []
    for i, hs in inputs.items():
        q, k, _ = model.expert.layers[i].qkv(hs[:, :1], cos, sin)  # q [B, H, 1, Dh], k [B, KV, 1, Dh]
        probs = attention_probs(q, torch.cat([prefix.keys[i], k], dim=2), masks[i])  # [B, H, 1, P + 1]
        losses += named_share_losses(probs[:, :, 0, :named.shape[1]], named)
    return torch.stack(losses).mean() if losses else torch.zeros((), device=named.device)
