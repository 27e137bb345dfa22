"""How `vlacompile train` trains a CogACT preset from scratch (training.py runs the loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .objective import Objective

OBJECTIVE = ("eps-prediction MSE, 100-step squaredcos_cap_v2, repeated diffusion steps, condition dropout (CogACT), "
             "plus the grounding MSE of a linear head on the cognition feature (not shipped)")


@dataclass
class CogACTRecipe:
    preset: object  # CogACTConfig
    tokenizer: object  # prompt.PromptTokenizer
    objective: Objective = field(default_factory=Objective)
    description: str = OBJECTIVE
    loss_label: str = "eps-prediction MSE"

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

    def batch(self, frames: list, stats: dict) -> tuple:
        """(pixels, input ids, text validity, normalized actions, grounding targets)."""
        import numpy as np
        import torch

        from ...sim.demos import STATISTICS_KEY, normalize
        from .objective import pixels_from_uint8

        ids = [self.tokenizer.prompt_ids(f.instruction) for f in frames]
        width = max(map(len, ids))
        input_ids = torch.tensor([i + [0] * (width - len(i)) for i in ids])
        valid = torch.tensor([[k < len(i) for k in range(width)] for i in ids])
        pixels = pixels_from_uint8(torch.from_numpy(np.stack([f.image for f in frames])))
        actions = torch.from_numpy(np.stack([normalize(f.actions, stats[STATISTICS_KEY]) for f in frames]))
        return pixels, input_ids, valid, actions, torch.from_numpy(np.stack([f.grounding for f in frames]))

    def loss(self, model, head, batch: tuple, g):
        from .objective import training_loss

        return training_loss(model, head, *batch, self.objective, g)

    def save(self, folder: Path, model, stats: dict) -> Path:
        """The weights in the released key layout and the dataset statistics; -> the weights file."""
        from safetensors.torch import save_file

        from ...fsutil import write_json

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
        write_json(folder / "dataset_statistics.json", stats)
        return folder / "weights.safetensors"
