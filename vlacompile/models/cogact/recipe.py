"""How `vlacompile train` trains a CogACT preset from scratch (training.py runs the loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .objective import Objective

OBJECTIVE = ("eps-prediction MSE, 100-step squaredcos_cap_v2, repeated diffusion steps, condition dropout (CogACT), "
             "plus the grounding MSE of a linear head on the cognition feature and a per-patch loss on the visual "
             "tokens (heads not shipped), after a vision stage on the per-patch loss alone")


@dataclass
class CogACTRecipe:
    preset: object  # CogACTConfig
    tokenizer: object  # prompt.PromptTokenizer
    objective: Objective = field(default_factory=Objective)
    description: str = OBJECTIVE
    loss_label: str = "eps-prediction MSE"
    steps: int = 1700  # with the vision stage, 58 minutes on the 2-core CPU here (the shipped run)
    vision_steps: int = 1000  # the vision stage's steps (objective.py): 10.6 minutes here at batch 32
    patch_labels: bool = True  # frames carry sim/patches.py's labels (the per-patch loss reads them)
    patch_head: bool = True  # heads() has the per-patch head, so a vision stage can run

    @property
    def chunk(self) -> int:
        return self.preset.dit.chunk

    @property
    def head_width(self) -> int:
        return self.preset.llm.hidden  # the cognition feature's width

    def initial_model(self, seed: int):
        from .build import from_state, state_shapes
        from .objective import initial_state

        shapes = state_shapes(self.preset.name)
        return from_state(self.preset, initial_state(shapes, self.preset, seed), "initialization").train()

    def trained_model(self, folder: Path, flag: str = "--init"):
        """A model `vlacompile train` wrote (weights.safetensors), to train further."""
        from safetensors.torch import load_file

        from ...errors import UserError
        from .build import from_state

        weights = Path(folder) / "weights.safetensors"
        if not weights.is_file():
            raise UserError(f"{flag} {folder}: no weights.safetensors; give a folder `vlacompile train` wrote")
        return from_state(self.preset, load_file(str(weights)), str(weights)).train()

    def heads(self):
        """The throw-away training heads: grounding (cognition feature) and patches (visual tokens)."""
        import torch

        from ...sim.demos import GROUNDING_DIMS
        from ...sim.patch_head import PatchHead

        readout = {f"grounding{i}": torch.nn.Linear(self.head_width, GROUNDING_DIMS)
                   for i in self.objective.readout_layers}
        return torch.nn.ModuleDict({"grounding": torch.nn.Linear(self.head_width, GROUNDING_DIMS),
                                    "patches": PatchHead(self.head_width), **readout})

    def vision_parameters(self, model) -> list:
        """What the vision stage trains: both towers and the projector (the visual tokens' makers)."""
        return [*model.vision_backbone.parameters(), *model.projector.parameters()]

    def vision_batch(self, frames: list) -> tuple:
        """(images [B, 224, 224, 3] uint8, patch labels [B, 256, 5]) of frames that carry patch labels."""
        return self._images(frames), self._patches(frames)

    def vision_loss(self, model, heads, batch: tuple):
        """The per-patch loss of a vision batch (on the model's device)."""
        from ...sim.patch_head import patch_loss
        from .objective import pixels_from_uint8

        images, labels = batch
        return patch_loss(heads["patches"], model.visual_tokens(pixels_from_uint8(images)), labels)

    @staticmethod
    def _images(frames: list):
        """Frames stay uint8 until they reach the training device: a quarter of the bytes to move."""
        import numpy as np
        import torch

        return torch.from_numpy(np.stack([f.image for f in frames]))

    @staticmethod
    def _patches(frames: list):
        import numpy as np
        import torch

        return torch.from_numpy(np.stack([f.patches for f in frames]))

    def batch_inputs(self, frames: list) -> tuple:
        """(images uint8, input ids right-padded to the longest, their validity): what the policy reads."""
        import torch

        ids = [self.tokenizer.prompt_ids(f.instruction) for f in frames]
        width = max(map(len, ids))
        input_ids = torch.tensor([i + [0] * (width - len(i)) for i in ids])
        valid = torch.tensor([[k < len(i) for k in range(width)] for i in ids])
        return self._images(frames), input_ids, valid

    def batch(self, frames: list, stats: dict) -> tuple:
        """(images uint8, input ids, text validity, normalized actions, grounding targets, patch labels,
        named-object patches)."""
        import numpy as np
        import torch

        from ...sim.demos import STATISTICS_KEY, normalize

        actions = torch.from_numpy(np.stack([normalize(f.actions, stats[STATISTICS_KEY]) for f in frames]))
        return (*self.batch_inputs(frames), actions, torch.from_numpy(np.stack([f.grounding for f in frames])),
                self._patches(frames), torch.from_numpy(np.stack([f.named for f in frames])))

    def loss(self, model, heads, batch: tuple, g):
        """(total, eps MSE, grounding MSE, patch loss, pointer loss)."""
        from .objective import pixels_from_uint8, training_loss

        images, *rest = batch
        return training_loss(model, heads, pixels_from_uint8(images), *rest, self.objective, g)

    def save(self, folder: Path, model, stats: dict) -> Path:
        """The weights in the released key layout and the dataset statistics; -> the weights file."""
        from safetensors.torch import save_file

        from ...fsutil import write_json

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
        write_json(folder / "dataset_statistics.json", stats)
        return folder / "weights.safetensors"
