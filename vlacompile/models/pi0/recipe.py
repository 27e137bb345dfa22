"""How `vlacompile train` trains a pi0 preset from scratch (training.py runs the loop).

The benchmark has one camera: it fills the first slot and the other slots are absent, as at
inference. Absent slots are masked out and take no RoPE position, so the batches hold the one
present camera only; the model computes the same thing as with the empty slots, at half the cost.
The output is a LeRobot-layout folder (checkpoint.save_folder), with the state and action statistics
(mean / std, pi0's MEAN_STD normalization) of the demonstrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .objective import Objective

OBJECTIVE = ("flow-matching velocity MSE over the real action dims, t ~ Beta(1.5, 1) on [0.001, 1] (openpi / "
             "LeRobot), several (t, noise) draws per prefix, plus the grounding MSE of a linear head on the "
             "expert's final state token (not shipped)")


@dataclass
class Pi0Recipe:
    preset: object  # Pi0Config
    tokenizer: object  # tokenizer.PromptTokenizer
    objective: Objective = field(default_factory=Objective)
    description: str = OBJECTIVE
    loss_label: str = "flow-matching velocity MSE"
    action_dim: int = 7  # the benchmark's (x, y, z, roll, pitch, yaw, gripper); the loss covers these
    steps: int = 2000  # the shipped run's: 57 minutes on the 2-core CPU here
    # The shipped pi0-tiny predates the per-patch and pointer losses: no vision stage and both weights
    # 0 by default. `--patches W` turns the first on, and with it `--vision-steps N` (CogACT's stage);
    # `--pointer W` the second.
    vision_steps: int = 0

    def __post_init__(self):
        if self.description == OBJECTIVE:
            extra = [what for weight, what in ((self.objective.patches, "a per-patch loss on the image tokens (head "
                                                "not shipped)"), (self.objective.pointer, "a pointer loss on the "
                                                "state token's attention"), (self.objective.temperature_draws,
                                                f"{self.objective.temperature_draws:g} of the draws' noise scaled by "
                                                f"the sampling temperature")) if weight]
            self.description = ", and ".join([OBJECTIVE, *extra])

    @property
    def patch_labels(self) -> bool:
        """Frames carry sim/patches.py's labels (and the named objects' patches) only where a loss reads
        them (they cost rendering time)."""
        return bool(self.objective.patches or self.objective.pointer)

    @property
    def patch_head(self) -> bool:
        """Whether heads() has the per-patch head (the vision stage trains it)."""
        return bool(self.objective.patches)

    @property
    def chunk(self) -> int:
        return self.preset.horizon

    @property
    def head_width(self) -> int:
        return self.preset.expert.width

    def heads(self):
        """The throw-away heads: grounding (the expert's final state token) and, with the per-patch
        loss, patches (the image tokens). The grounding head is drawn first, as in runs without it."""
        import torch

        from ...sim.demos import GROUNDING_DIMS
        from ...sim.patch_head import PatchHead

        heads = torch.nn.ModuleDict({"grounding": torch.nn.Linear(self.head_width, GROUNDING_DIMS)})
        if self.patch_head:
            heads["patches"] = PatchHead(self.preset.vlm.width)
        return heads

    def vision_parameters(self, model) -> list:
        """What the vision stage trains: the SigLIP tower and the projector (the image tokens' makers)."""
        return [*model.vision_tower.parameters(), *model.projector.parameters()]

    def vision_batch(self, frames: list) -> tuple:
        """(pixels [B, 1, 3, 224, 224] in [-1, 1], patch labels [B, 256, 5])."""
        import torch

        return self._pixels(frames), torch.from_numpy(np.stack([f.patches for f in frames]))

    def vision_loss(self, model, heads, batch: tuple):
        """The per-patch loss of a vision batch."""
        from ...sim.patch_head import patch_loss

        pixels, labels = batch
        return patch_loss(heads["patches"], model.embed_images(pixels), labels)

    @staticmethod
    def _pixels(frames: list):
        """The benchmark's one camera, as the policy preprocesses it: [B, 1, 3, 224, 224] in [-1, 1]."""
        import torch

        images = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).float()
        return (images / 255.0 * 2.0 - 1.0)[:, None]

    def initial_model(self, seed: int):
        """The seeded synthetic draw (synthetic.py: fan-in scaled, per-layer residual gains) as the start."""
        from .build import from_state, state_shapes
        from .synthetic import synthesize_state

        return from_state(self.preset, synthesize_state(state_shapes(self.preset.name), seed), "initialization").train()

    def trained_model(self, folder: Path):
        """A model `vlacompile train` wrote (LeRobot's layout), to train further; one of a preset with a
        narrower action expert is grown into this one (widen.py)."""
        from ...errors import UserError
        from .checkpoint import load_folder
        from .widen import widened

        model = load_folder(folder).model
        if model.cfg.name != self.preset.name:
            try:
                model = widened(model, self.preset)
            except ValueError:
                raise UserError(f"--init {folder}: a {model.cfg.name} model; {self.preset.name} trains from "
                                f"{self.preset.name} or a narrower-expert version of it") from None
        return model.train()

    def statistics(self, stats: dict):
        from ...sim.demos import STATISTICS_KEY
        from .statistics import Statistics

        s = stats[STATISTICS_KEY]
        arrays = (np.asarray(s[k][m], np.float32) for k in ("proprio", "action") for m in ("mean", "std"))
        return Statistics(*arrays)

    def batch(self, frames: list, stats: dict) -> tuple:
        """(pixels [B, 1, 3, 224, 224], image_valid, ids, ids_valid, state [B, 32], actions [B, 50, 32],
        grounding, patch labels [B, 256, 5] and named-object patches [B, 256] (or [B, 0, 5] and [B, 0]
        without the losses that read them))."""
        import torch

        s, cfg, b = self.statistics(stats), self.preset, len(frames)
        pixels = self._pixels(frames)
        patches = np.stack([f.patches for f in frames]) if self.patch_labels else np.zeros((b, 0, 5), np.float32)
        named = np.stack([f.named for f in frames]) if self.patch_labels else np.zeros((b, 0), np.uint8)
        encoded = [self.tokenizer.encode(f.instruction, cfg.prompt_len) for f in frames]
        state = np.zeros((b, cfg.max_state_dim), np.float32)
        state[:, : s.state_dim] = [s.normalize_state(f.state) for f in frames]
        actions = np.zeros((b, cfg.horizon, cfg.max_action_dim), np.float32)
        actions[..., : s.action_dim] = [(f.actions - s.action_mean) / (s.action_std + s.eps) for f in frames]
        return (pixels, torch.ones(b, 1, dtype=torch.bool), torch.tensor([e[0] for e in encoded]),
                torch.tensor([e[1] for e in encoded]), torch.from_numpy(state), torch.from_numpy(actions),
                torch.from_numpy(np.stack([f.grounding for f in frames])), torch.from_numpy(patches),
                torch.from_numpy(named))

    def loss(self, model, heads, batch: tuple, g):
        """(total, flow MSE, grounding MSE, patch loss, pointer loss)."""
        from .objective import training_loss

        return training_loss(model, heads, *batch, self.action_dim, self.objective, g)

    def save(self, folder: Path, model, stats: dict) -> Path:
        """The LeRobot folder (written into the staged `folder`); -> the weights file."""
        from .checkpoint import write_folder
        from .policy import Pi0Policy, camera_names

        policy = Pi0Policy(model.eval(), self.tokenizer, self.statistics(stats), self.preset.name,
                           camera_names(self.preset.cameras))
        write_folder(policy, folder)
        return folder / "model.safetensors"
