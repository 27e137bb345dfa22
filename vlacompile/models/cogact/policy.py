"""A CogACT policy: model, tokenizer and action statistics; image + instruction -> 16x7 actions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...errors import UserError
from .config import CogACTConfig
from .model import CogACT
from ...runtime.postprocess import check_statistics, statistics_key, unnormalize
from .preprocess import preprocess
from .prompt import PromptTokenizer

ASSETS = Path(__file__).parent / "assets"
TINY_TOKENIZER = ASSETS / "tiny-tokenizer.json"
EMBEDDED = ASSETS / "cogact-tiny"  # the trained default: `vlacompile train` wrote this folder


def read_statistics(path: Path, action_dim: int | None = None) -> dict:
    try:
        stats = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read dataset statistics ({exc})") from None
    if not isinstance(stats, dict) or not stats or not all(
        isinstance(v, dict) and {"q01", "q99"} <= set(v.get("action", {})) for v in stats.values()
    ):
        raise UserError(f'{path}: expected {{dataset: {{"action": {{"q01", "q99", "mask"}}}}}}')
    if action_dim is not None:
        check_statistics(stats, action_dim, path)
    return stats


@dataclass
class CogACTPolicy:
    model: CogACT
    tokenizer: PromptTokenizer
    statistics: dict
    source: str

    @property
    def cfg(self) -> CogACTConfig:
        return self.model.cfg

    def unnorm_key(self, key: str | None = None) -> str:
        return statistics_key(self.statistics, key)

    def encode(self, image: Image.Image, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """-> pixels [1, 6, 224, 224], prompt ids [1, L]."""
        if not instruction.strip():
            raise UserError("--instruction is empty: say what the robot should do")
        pixels = torch.from_numpy(preprocess(image, self.cfg.dino.image))
        ids = torch.tensor([self.tokenizer.prompt_ids(instruction)])
        return pixels, ids

    def noise(self, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(1, self.cfg.dit.chunk, self.cfg.dit.action_dim, generator=g)

    def predict_normalized(self, image, instruction, noise: torch.Tensor) -> torch.Tensor:
        pixels, ids = self.encode(image, instruction)
        return self.model(pixels, ids, noise)[0]  # [16, 7]

    def predict(self, image, instruction: str, seed: int = 0, noise=None, unnorm_key=None) -> np.ndarray:
        """Un-normalized action chunk [16, 7]; the same seed (or noise) gives the same actions."""
        stats = self.statistics[self.unnorm_key(unnorm_key)]
        normalized = self.predict_normalized(image, instruction, self.noise(seed) if noise is None else noise)
        return unnormalize(normalized.numpy(), stats)
