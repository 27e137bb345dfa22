"""Fidelity: how far the rewritten model's outputs are from the reference's, on held-out samples.

Both models see the same pixels, prompt and initial noise. Actions are compared before
post-processing (the normalized DiT output), where clipping cannot hide a difference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DIMS = ["x", "y", "z", "roll", "pitch", "yaw", "grip"]


@torch.no_grad()
def fidelity(policy, compressed, samples, seed: int = 0) -> dict:
    cog_cos, ref_actions, new_actions = [], [], []
    for i, sample in enumerate(samples):
        pixels, ids = policy.encode(sample.load_image(), sample.instruction)
        noise = policy.noise(seed + i)
        ref_cog, new_cog = policy.model.cognition(pixels, ids), compressed.cognition(pixels, ids)
        cog_cos.append(F.cosine_similarity(ref_cog, new_cog).item())
        ref_actions.append(policy.model.act(ref_cog, noise)[0])
        new_actions.append(compressed.act(new_cog, noise)[0])
    ref, new = torch.stack(ref_actions), torch.stack(new_actions)  # [N, 16, 7]
    return {"samples": len(samples), "cognition_cosine": sum(cog_cos) / len(cog_cos),
            "cognition_cosine_min": min(cog_cos), "actions": _action_metrics(ref, new)}


def _metrics(ref: torch.Tensor, new: torch.Tensor) -> dict:
    """ref, new [N, K]: per-sample cosine averaged; mean and max absolute difference."""
    diff = (ref - new).abs()
    return {"cosine": F.cosine_similarity(ref, new, dim=1).mean().item(),
            "l1": diff.mean().item(), "linf": diff.max().item()}


def _action_metrics(ref: torch.Tensor, new: torch.Tensor) -> dict:
    overall = _metrics(ref.flatten(1), new.flatten(1))
    per_dim = {d: _metrics(ref[:, :, j], new[:, :, j]) for j, d in enumerate(DIMS)}
    return {"overall": overall, "per_dim": per_dim}
