"""The CogACT module: the four parts of the released checkpoint, and the forward they compose."""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from .action_head import ActionModel
from .config import CogACTConfig
from .llm import LLMBackbone
from .sampler import sample_actions
from .vision import DinoSigLIPBackbone, FusedMLPProjector

PARTS = ("vision_backbone", "projector", "llm_backbone", "action_model")


class CogACT(nn.Module):
    def __init__(self, cfg: CogACTConfig):
        super().__init__()
        self.cfg = cfg
        self.vision_backbone = DinoSigLIPBackbone(cfg.dino, cfg.siglip)
        self.projector = FusedMLPProjector(cfg.vision_dim, cfg.llm.hidden)
        self.llm_backbone = LLMBackbone(cfg.llm)
        self.action_model = ActionModel(cfg.dit, cfg.llm.hidden)
        self.condition_map: nn.Module | None = None  # set by the condition-map pass (passes/condition_map.py)

    def sampler_settings(self) -> dict:
        """What, besides the weights, decides the actions of an input and noise (calibration keys it)."""
        return asdict(self.cfg.sampler)

    def pass_target(self):
        """What the compile passes may change, and how (passes.family)."""
        from .targets import CogACTTarget

        return CogACTTarget(self)

    def visual_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projector(self.vision_backbone(pixels))  # [B, 6, 224, 224] -> [B, 256, D]

    def llm_inputs(self, visual: torch.Tensor, input_ids: torch.Tensor, text_valid: torch.Tensor | None = None):
        """Sequence [BOS, visual tokens, rest of the prompt], its validity mask and position ids.

        input_ids [B, L] starts with BOS; `text_valid` [B, L] marks real ids when the prompt is
        right-padded to a fixed length (None: all real).
        """
        b = input_ids.shape[0]
        text = self.llm_backbone.embed(input_ids).to(visual.dtype)  # [B, L, D]
        h = torch.cat([text[:, :1], visual, text[:, 1:]], dim=1)  # [B, 1 + 256 + L - 1, D]
        if text_valid is None:
            text_valid = torch.ones_like(input_ids, dtype=torch.bool)
        vis_valid = torch.ones(b, visual.shape[1], dtype=torch.bool, device=h.device)
        valid = torch.cat([text_valid[:, :1].bool(), vis_valid, text_valid[:, 1:].bool()], dim=1)
        positions = torch.arange(h.shape[1], device=h.device).expand(b, -1)
        return h, valid, positions

    def cognition_from_visual(self, visual, input_ids, text_valid=None) -> torch.Tensor:
        """Final-normed hidden state at the cognition token (the last real position): [B, D]; in a
        rewritten model, through the fitted condition map if one is installed."""
        h, valid, positions = self.llm_inputs(visual, input_ids, text_valid)
        out, valid = self.llm_backbone(h, valid, positions)
        last = valid.long().sum(dim=1) - 1  # right padding: real positions are a prefix
        cognition = out[torch.arange(out.shape[0], device=out.device), last]
        return cognition if self.condition_map is None else self.condition_map(cognition)

    def cognition(self, pixels, input_ids, text_valid=None) -> torch.Tensor:
        return self.cognition_from_visual(self.visual_tokens(pixels), input_ids, text_valid)

    def act(self, cognition: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Cognition [B, D] and initial noise [B, 16, 7] -> normalized actions [B, 16, 7]."""
        denoiser = getattr(self.action_model, "denoiser", None)  # set by the cached-denoising pass
        if denoiser is not None:
            return denoiser(self.action_model.net, cognition, noise)
        return sample_actions(self.action_model.net, cognition, noise, self.cfg.sampler)

    @torch.no_grad()
    def forward(self, pixels, input_ids, noise, text_valid=None) -> torch.Tensor:
        return self.act(self.cognition(pixels, input_ids, text_valid), noise)
