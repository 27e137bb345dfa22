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

Vision. The same holds one level down: CogACT's DINOv2 and SigLIP arrive pretrained, ours from
nothing. So the towers start from MAE's 2-D sine-cosine position tables (then trained) instead of noise, and
`patch_loss` teaches them, with weight `patches`, what each patch shows and where it is: a small
head on every visual token classifies the kind and colour under the patch and regresses the centre
of what it shows (sim/patches.py). training.py runs it alone first (the vision stage, cheap: no
LLM), then beside the objectives above. A probe measured it (docs/BENCHMARKS.md): grounding error
after 400 steps 0.068 with the vision stage, 0.113 without it, 0.152 with neither the stage nor
the dense target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...sim.patch_head import named_share_losses, patch_loss
from .sampler import cosine_alphas_cumprod

DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Objective:
    # Noise draws per cognition feature. CogACT uses 4 on GPUs; here the VLM forward costs
    # far more than the DiT, so 32 cheap draws per feature was measured to learn much faster.
    repeats: int = 32
    cond_drop: float = 0.1  # probability of training on the unconditional vector
    grounding: float = 1.0  # weight of the grounding loss; 0 is CogACT's objective alone
    patches: float = 1.0  # weight of the per-patch loss on the visual tokens; 0: none
    pointer: float = 0.0  # weight of the pointer loss on the cognition token's attention; 0: none
    pointer_layers: tuple[int, ...] = (1, 7, 15, 31)  # the LLM layers whose attention it reads
    # LLM layers whose input at the cognition token a grounding head of its own also reads (weight
    # `grounding`, mean over them); () : only the final feature. See readout_loss.
    readout_layers: tuple[int, ...] = ()
    # Probability that each LLM layer is skipped (its output replaced by its input) at a training
    # step: LayerDrop (Fan et al., 2019), untargeted. See SkippedLayers.
    layer_drop: float = 0.0


def pixels_from_uint8(images: torch.Tensor) -> torch.Tensor:
    """[B, 224, 224, 3] uint8 -> [B, 6, 224, 224]: the runtime's preprocessing of a 224 px image
    (runtime.preprocess: /255, DINOv2 then SigLIP normalization), batched in torch."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    mean, std = (torch.tensor(v, device=x.device)[:, None, None] for v in (DINO_MEAN, DINO_STD))
    return torch.cat([(x - mean) / std, (x - 0.5) / 0.5], dim=1)


def diffusion_loss(model, pixels, input_ids, text_valid, actions, objective: Objective, g: torch.Generator):
    """pixels [B, 6, H, W], input_ids / text_valid [B, L] (right-padded), actions [B, 16, 7]
    normalized -> scalar MSE between the predicted and the true noise."""
    return eps_loss(model, model.cognition(pixels, input_ids, text_valid), actions, objective, g)


def training_loss(model, heads: torch.nn.ModuleDict, pixels, input_ids, text_valid, actions, grounding, patches,
                  named, objective: Objective, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(total, eps MSE, grounding MSE, patch loss, pointer loss) of one batch. `heads["grounding"]`
    maps the cognition feature [B, D] to the grounding targets [B, G]; `heads["patches"]` reads the
    visual tokens (patch_loss) against `patches` [B, 256, 5]; `named` [B, 256] marks the patches of
    the objects the instruction names (pointer_loss)."""
    visual = model.visual_tokens(pixels)
    pointing = objective.pointer_layers if objective.pointer else ()
    with LayerInputs(model.llm_backbone, tuple(sorted({*pointing, *objective.readout_layers}))) as inputs, \
            SkippedLayers(model.llm_backbone, objective.layer_drop, g):
        cognition = model.cognition_from_visual(visual, input_ids, text_valid)  # [B, D]
    eps = eps_loss(model, cognition, actions, objective, g)
    ground = F.mse_loss(heads["grounding"](cognition), grounding)
    dense = patch_loss(heads["patches"], visual, patches)
    zero = torch.zeros((), device=eps.device)
    point = pointer_loss(model.llm_backbone, {i: inputs[i] for i in pointing}, text_valid, named) if pointing else zero
    readout = readout_loss(heads, inputs, objective.readout_layers, text_valid, visual.shape[1], grounding) \
        if objective.readout_layers else zero
    total = eps + objective.grounding * (ground + readout) + objective.patches * dense + objective.pointer * point
    return total, eps, ground, dense, point


def readout_loss(heads, inputs: dict, layers: tuple[int, ...], text_valid, visual: int, grounding) -> torch.Tensor:
    """Mean over `layers` of the grounding MSE of head `grounding{i}` on layer i's input at the
    cognition token (RMS-normalized, without weights: the residual stream's scale grows with depth).

    Why: on held-out scenes, the cognition feature of every model trained here knew where the
    gripper is (sim/readout.py) but, at every layer, not where the named object is, though the
    visual tokens locate objects well. The final grounding head reaches the value projections that
    would carry the object's place only through all the layers above it; a head right after the
    pointer layers gives that path one layer. (Measured in docs/BENCHMARKS.md: alone it did not
    make the place readable.)"""
    last = text_valid.long().sum(1) + visual - 1  # as in pointer_loss
    rows = torch.arange(last.shape[0], device=last.device)
    losses = [F.mse_loss(heads[f"grounding{i}"](F.rms_norm(inputs[i][0][rows, last], (inputs[i][0].shape[-1],))),
                         grounding) for i in layers]
    return torch.stack(losses).mean()


class LayerInputs(dict):
    """{layer index: (its input hidden states, its keyword arguments)} of one LLM forward, for the
    layers asked for, captured by forward pre-hooks that live as long as the `with` block."""

    def __init__(self, llm, layers: tuple[int, ...]):
        super().__init__()
        self.llm, self.layers, self.hooks = llm, layers, []

    def __enter__(self):
        for i in self.layers:
            def keep(module, args, kwargs, i=i):
                self[i] = (args[0], kwargs)
            self.hooks.append(self.llm.layers[i].register_forward_pre_hook(keep, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for h in self.hooks:
            h.remove()


class SkippedLayers:
    """LayerDrop for one training step: each LLM layer is skipped with probability `p` (one draw
    per layer from `g`, shared by the batch, as Fan et al. do), by a forward hook that returns the
    layer's input as its output. No draw at all when p is 0, so runs without it replay exactly.

    Why: EfficientVLA drops the LLM layers whose output is most like their input, relying on the
    depth redundancy of a 7B LLM. The trained cogact-tiny's profile looks redundant (1 - cosine at
    most 0.0012 for the ten layers Eq. 1 drops at L22) yet dropping them costs 29 points of
    closed-loop success: its small residual updates carry the decision. Untargeted LayerDrop gives
    a model that redundancy without telling it which layers calibration will pick. Measured
    (docs/BENCHMARKS.md, "Training the stand-in with LayerDrop"): two runs made L22 cost 4 points,
    but the uncompressed model lost 9, so the shipped default's recipe leaves it at 0. The layer
    still runs (its input reaches the pointer and readout hooks); only its output is discarded, so
    no gradient flows through it."""

    def __init__(self, llm, p: float, g):
        import torch

        self.llm, self.hooks = llm, []
        n = len(llm.layers)
        self.skipped = (torch.rand(n, generator=g, device=g.device) < p).nonzero().flatten().tolist() if p else []

    def __enter__(self):
        for i in self.skipped:
            self.hooks.append(self.llm.layers[i].register_forward_hook(lambda module, args, out: args[0]))
        return self

    def __exit__(self, *exc):
        for h in self.hooks:
            h.remove()


def pointer_loss(llm, inputs: LayerInputs, text_valid: torch.Tensor, named: torch.Tensor) -> torch.Tensor:
    """How much of the cognition token's attention falls on the named objects' patches: for each
    layer in `inputs` and each named object, -log of the share that its head (sim.patch_head.POINTER_HEADS: head 0
    for the object named first, head 1 for the second) gives that object's patches; averaged over
    the samples that show the object, then over the objects and the layers. `named` [B, 256] holds
    each patch's role (1, 2, or 0 for neither). The sequence is [BOS, 256 visual tokens, prompt] and
    the cognition token is its last real position.

    Why (CogACT's VLM arrives pretrained, ours does not): the policy fails mostly by acting on a
    distractor that shares the named object's colour or kind (docs/BENCHMARKS.md), and the grounding
    loss teaches which object only through the error in where it is. This term says which object,
    in the one place the cognition feature can read it from: its attention to the visual tokens.
    Fixed heads, not the best head of each sample: with the best one (the first version) a different
    head pointed in different scenes, so no one head's values carried the object's place
    (sim/readout.py measured it on held-out scenes). One head per object, not one for both (the
    second version): a head given both split its attention between them (0.34 / 0.32 at held-out
    first frames), and its values then carry the average of two places, which no task asks for."""
    visual = named.shape[1]
    last = text_valid.long().sum(1) + visual - 1  # BOS and the prompt in text_valid, the visual tokens between
    rows = torch.arange(named.shape[0], device=named.device)
    losses = []
    for i, (h_in, kwargs) in inputs.items():
        probs = llm.attention_probs(i, h_in, kwargs["attention_mask"], kwargs["position_embeddings"])
        losses += named_share_losses(probs[rows, :, last, 1:1 + visual], named)
    return torch.stack(losses).mean() if losses else torch.zeros((), device=named.device)


def sincos_table(tokens: int, width: int) -> torch.Tensor:
    """MAE's fixed 2-D sine-cosine position table for a square grid of `tokens` patches: the first
    half of the channels codes the row, the second half the column. -> [1, tokens, width]."""
    grid = math.isqrt(tokens)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")

    def code(pos: torch.Tensor, channels: int) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(channels // 2, dtype=torch.float64) / (channels / 2))
        angle = pos.flatten()[:, None] * omega[None]
        return torch.cat([angle.sin(), angle.cos()], 1)

    return torch.cat([code(rows, width // 2), code(cols, width // 2)], 1).float()[None]


def eps_loss(model, cognition: torch.Tensor, actions: torch.Tensor, objective: Objective, g: torch.Generator):
    """The eps-prediction MSE of the action head given the cognition features [B, D]."""
    net, b, device = model.action_model.net, cognition.shape[0], g.device  # g: on the training device
    drop = torch.rand(b, generator=g, device=device) < objective.cond_drop
    z = torch.where(drop[:, None], net.z_embedder.uncondition.expand(b, -1), cognition)
    z = z.repeat(objective.repeats, 1)[:, None]  # [R*B, 1, D]
    x0 = actions.repeat(objective.repeats, 1, 1)  # [R*B, 16, 7]
    steps = model.cfg.sampler.train_steps
    t = torch.randint(0, steps, (x0.shape[0],), generator=g, device=device)
    abar = torch.tensor(cosine_alphas_cumprod(steps), dtype=torch.float32, device=device)[t][:, None, None]
    eps = torch.randn(x0.shape, generator=g, device=device)
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

    The ViTs' position tables: 2-D sine-cosine (module docstring). Linear and conv weights: normal
    with std 1/sqrt(fan_in); the output projection of every residual branch scaled down by
    sqrt(2 x depth) so a deep stack starts near the identity;
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
        elif leaf == "pos_embed" and math.isqrt(shape[1]) ** 2 == shape[1] and shape[-1] % 4 == 0:
            t = sincos_table(shape[1], shape[-1])  # the ViTs' patch grid (module docstring)
        elif leaf == "weight" and len(shape) >= 2:
            t = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
            if name.endswith(RESIDUAL_OUT):
                t = t / math.sqrt(2 * _stack_depth(name, cfg))
        else:  # positional embeddings, class / register tokens, MAP latent
            t = torch.randn(shape, generator=g) * 0.1
        out[name] = t
    return out
