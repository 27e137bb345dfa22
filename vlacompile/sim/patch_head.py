"""The per-patch training head and its loss over sim/patches.py's labels, shared by the families'
training recipes (models/<family>/recipe.py): a small head on each visual token, thrown away after
training, classifies the kind and the colour under the patch and regresses the centre of what it
shows. models/cogact/objective.py says why a model trained from scratch here needs it. Also shared:
the core of the pointer loss (named_share_losses), which reads a query's attention to those patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The attention heads a pointer loss trains: head 0 points at the object the instruction names first,
# head 1 at the second (sim.patches.named_patches' roles 1 and 2).
POINTER_HEADS = (0, 1)


class PatchHead(torch.nn.Sequential):
    """Visual token [.., D] -> kind logits, colour logits, centre (3): sim/patches.py's labels."""

    def __init__(self, width: int, hidden: int = 128):
        from .patches import COLOURS, KINDS

        self.kinds, self.colours = len(KINDS) + 1, len(COLOURS) + 1  # + "nothing"
        super().__init__(torch.nn.Linear(width, hidden), torch.nn.GELU(),
                         torch.nn.Linear(hidden, self.kinds + self.colours + 3))


def patch_loss(head: PatchHead, visual: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the kind and of the colour under each patch, plus the MSE of the centre of
    what it shows, over the patches that show something. visual [B, P, D], labels [B, P, 5]."""
    out = head(visual)
    kinds, colours = head.kinds, head.colours
    kind, colour, centre = labels[..., 0].long(), labels[..., 1].long(), labels[..., 2:]
    ce = F.cross_entropy(out[..., :kinds].flatten(0, 1), kind.flatten()) + \
        F.cross_entropy(out[..., kinds:kinds + colours].flatten(0, 1), colour.flatten())
    shows = (kind > 0).float()
    squared = ((out[..., kinds + colours:] - centre) ** 2).mean(-1)
    return ce + (squared * shows).sum() / shows.sum().clamp(min=1.0)


def named_share_losses(rows: torch.Tensor, named: torch.Tensor) -> list[torch.Tensor]:
    """For each named object (role r in POINTER_HEADS order): -log of the share of one query's attention
    that its head gives that object's patches, averaged over the samples that show the object.
    rows [B, H, P]: the query's attention probabilities on the P visual tokens (sums to at most 1);
    named [B, P]: each patch's role (1, 2, or 0 for neither). An object no sample shows adds no term."""
    losses = []
    for role, head in enumerate(POINTER_HEADS, start=1):
        mask = named == role
        shown = mask.any(1)
        if shown.any():
            mass = (rows[:, head] * mask.float()).sum(-1).clamp(min=1e-4)  # [B]
            losses.append(-(mass.log() * shown).sum() / shown.sum())
    return losses
