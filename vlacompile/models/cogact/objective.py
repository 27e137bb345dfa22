"""CogACT's training objective and a from-scratch initialization, for training small presets here.

Objective (CogACT, from DiT): the action head predicts the noise added to the normalized action
chunk at a random step of the 100-step squaredcos_cap_v2 schedule, under a mean squared error.
Each cognition feature is used for `repeats` independent (step, noise) draws ("repeated diffusion
steps"), which trains the cheap action head more per pass of the expensive VLM. With probability
`cond_drop` a sample's cognition is replaced by the learned `uncondition` vector, which is what
makes classifier-free guidance at inference mean something.

Grounding. CogACT starts from a pretrained VLM (Prismatic) whose cognition feature already ties the
instruction's words to places in the image; the action objective only adapts it. From scratch, the
eps-MSE alone teaches the VLM that slowly: the first trained default reached 3% closed-loop success,
its open-loop direction accuracy flat from step 500 to 2000 (docs/BENCHMARKS.md). So training adds,
with weight `grounding`, the MSE of a linear head on the cognition feature that regresses where the
named objects are relative to the gripper (sim.demos.grounding): the signal a VLM's pretraining
would have given. The head is thrown away after training; the policy and its weights are CogACT's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .sampler import cosine_alphas_cumprod

DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Objective:
    # Noise draws per cognition feature. CogACT uses 4 on GPUs; here the VLM forward costs
    # far more than the DiT, so 32 cheap draws per feature was measured to learn much faster.
    repeats: int = 32
    cond_drop: float = 0.1  # probability of training on the unconditional vector
    grounding: float = 1.0  # weight of the grounding loss; 0 is CogACT's objective alone


def pixels_from_uint8(images: torch.Tensor) -> torch.Tensor:
    """[B, 224, 224, 3] uint8 -> [B, 6, 224, 224]: the runtime's preprocessing of a 224 px image
    (runtime.preprocess: /255, DINOv2 then SigLIP normalization), batched in torch."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(DINO_MEAN)[:, None, None], torch.tensor(DINO_STD)[:, None, None]
    return torch.cat([(x - mean) / std, (x - 0.5) / 0.5], dim=1)


def diffusion_loss(model, pixels, input_ids, text_valid, actions, objective: Objective, g: torch.Generator):
    """pixels [B, 6, H, W], input_ids / text_valid [B, L] (right-padded), actions [B, 16, 7]
    normalized -> scalar MSE between the predicted and the true noise."""
    return eps_loss(model, model.cognition(pixels, input_ids, text_valid), actions, objective, g)


def training_loss(model, head: torch.nn.Module, pixels, input_ids, text_valid, actions, grounding,
                  objective: Objective, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, eps MSE, grounding MSE) of one batch; `head` maps the cognition feature [B, D] to the
    grounding targets [B, G]."""
    cognition = model.cognition(pixels, input_ids, text_valid)  # [B, D]
    eps = eps_loss(model, cognition, actions, objective, g)
    ground = F.mse_loss(head(cognition), grounding)
    return eps + objective.grounding * ground, eps, ground


def eps_loss(model, cognition: torch.Tensor, actions: torch.Tensor, objective: Objective, g: torch.Generator):
    """The eps-prediction MSE of the action head given the cognition features [B, D]."""
    net, b = model.action_model.net, cognition.shape[0]
    drop = torch.rand(b, generator=g) < objective.cond_drop
    z = torch.where(drop[:, None], net.z_embedder.uncondition.expand(b, -1), cognition)
    z = z.repeat(objective.repeats, 1)[:, None]  # [R*B, 1, D]
    x0 = actions.repeat(objective.repeats, 1, 1)  # [R*B, 16, 7]
    steps = model.cfg.sampler.train_steps
    t = torch.randint(0, steps, (x0.shape[0],), generator=g)
    abar = torch.tensor(cosine_alphas_cumprod(steps), dtype=torch.float32)[t][:, None, None]
    eps = torch.randn(x0.shape, generator=g)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    return F.mse_loss(net(x_t, t.float(), z), eps)


RESIDUAL_OUT = ("self_attn.o_proj.weight", "mlp.down_proj.weight", "attn.proj.weight", "mlp.fc2.weight")


def _stack_depth(name: str, cfg) -> int:
    if name.startswith("llm_backbone"):
        return cfg.llm.layers
    if name.startswith("action_model"):
        return cfg.dit.depth
    return cfg.dino.depth if "dino" in name else cfg.siglip.depth


def initial_state(shapes: dict[str, torch.Size], cfg, seed: int) -> dict[str, torch.Tensor]:
    """A from-scratch initialization, drawn in state-dict order from one seeded generator.

    Linear and conv weights: normal with std 1/sqrt(fan_in); the output projection of every
    residual branch scaled down by sqrt(2 x depth) so a deep stack starts near the identity;
    biases 0, norms 1, layer scale 0.1; the action head's final layer 0 (as released, so training
    starts from predicting no noise); token embeddings and the unconditional vector unit normal.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[-1]
        if "final_layer" in name or leaf == "bias":
            t = torch.zeros(shape)
        elif "norm" in name:
            t = torch.ones(shape)
        elif leaf == "gamma":
            t = torch.full(shape, 0.1)
        elif "embed_tokens" in name or "uncondition" in name:
            t = torch.randn(shape, generator=g)
        elif leaf == "weight" and len(shape) >= 2:
            t = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
            if name.endswith(RESIDUAL_OUT):
                t = t / math.sqrt(2 * _stack_depth(name, cfg))
        else:  # positional embeddings, class / register tokens, MAP latent
            t = torch.randn(shape, generator=g) * 0.1
        out[name] = t
    return out
