"""The per-patch training head and its loss over sim/patches.py's labels, shared by the families'
training recipes (models/<family>/recipe.py): a small head on each visual token, thrown away after
training, classifies the kind and the colour under the patch and regresses the centre of what it
shows. models/cogact/objective.py says why a model trained from scratch here needs it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
