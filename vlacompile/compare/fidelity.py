"""Fidelity: how far the rewritten model's outputs are from the reference's, on held-out samples.

Both models see the same pixels, prompt (and state, for pi0) and initial noise. Actions are compared
before post-processing (the normalized output of the action head, pi0's padding cut off), where
clipping cannot hide a difference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DIMS = ["x", "y", "z", "roll", "pitch", "yaw", "grip"]


@torch.no_grad()
def fidelity(policy, compressed, samples, seed: int = 0) -> dict:
    """`cognition_cosine`: of the family's observation feature (`feature` names it: CogACT's cognition
    token; pi0's expert output at the state token, which reads the observation alone)."""
    from ..models import export_declaration

    family = export_declaration(policy)
    cog_cos, ref_actions, new_actions = [], [], []
    for i, sample in enumerate(samples):
        sample, noise = sample.loaded(), policy.noise(seed + i)
        ref_feature, ref = family.fidelity_outputs(policy, policy.model, sample, noise)
        new_feature, new = family.fidelity_outputs(policy, compressed, sample, noise)
        cog_cos.append(F.cosine_similarity(ref_feature.flatten()[None], new_feature.flatten()[None]).item())
        ref_actions.append(ref)
        new_actions.append(new)
    ref, new = torch.stack(ref_actions), torch.stack(new_actions)  # [N, chunk, dims]
    return {"samples": len(samples), "feature": family.FIDELITY_FEATURE,
            "cognition_cosine": sum(cog_cos) / len(cog_cos), "cognition_cosine_min": min(cog_cos),
            "actions": _action_metrics(ref, new)}


def _metrics(ref: torch.Tensor, new: torch.Tensor) -> dict:
    """ref, new [N, K]: per-sample cosine averaged; mean and max absolute difference."""
    diff = (ref - new).abs()
    return {"cosine": F.cosine_similarity(ref, new, dim=1).mean().item(),
            "l1": diff.mean().item(), "linf": diff.max().item()}


def _action_metrics(ref: torch.Tensor, new: torch.Tensor) -> dict:
    overall = _metrics(ref.flatten(1), new.flatten(1))
    names = DIMS if ref.shape[-1] == len(DIMS) else [f"d{j}" for j in range(ref.shape[-1])]
    per_dim = {d: _metrics(ref[:, :, j], new[:, :, j]) for j, d in enumerate(names)}
    return {"overall": overall, "per_dim": per_dim}
