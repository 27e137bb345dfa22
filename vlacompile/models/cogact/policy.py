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
from ...runtime.image import as_rgb
from ...runtime.noise import draw as draw_noise
from ...runtime.postprocess import check_statistics, statistics_key, unnormalize
from ...runtime.postprocess import declaration as postprocess_declaration
from .preprocess import preprocess
from .prompt import PromptTokenizer

ASSETS = Path(__file__).parent / "assets"
TINY_TOKENIZER = ASSETS / "tiny-tokenizer.json"
EMBEDDED = ASSETS / "cogact-tiny"  # the trained default: `vlacompile train` wrote this folder
GRIPPER_DIM = 6  # x, y, z, roll, pitch, yaw, gripper (field-notes §1)


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

    @property
    def postprocess(self) -> dict:
        """How normalized actions become robot actions: the manifest's "postprocess" entry."""
        return postprocess_declaration(GRIPPER_DIM)

    def unnorm_key(self, key: str | None = None) -> str:
        return statistics_key(self.statistics, key)

    @property
    def prompt_budget(self) -> int:
        """Prompt ids the graphs hold (BOS, template, instruction and suffix): the same cap here."""
        return 1 + self.cfg.text_len

    def check_instruction(self, instruction: str) -> list[int]:
        """The prompt ids; a bad or over-budget instruction is refused before any model work."""
        return self.tokenizer.prompt_ids(instruction, self.prompt_budget)

    def calibration_forward(self, sample, noise: torch.Tensor) -> torch.Tensor:
        """The reference forward on one calibration sample (data.calib.CalibSample); calibration's hooks watch it."""
        return self.model(*self.encode(sample.load_image(), sample.instruction), noise)

    def encode(self, image: Image.Image, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """-> pixels [1, 6, 224, 224], prompt ids [1, L]. `image`: a PIL image or uint8 RGB array."""
        ids = torch.tensor([self.check_instruction(instruction)])
        pixels = torch.from_numpy(preprocess(as_rgb(image), self.cfg.dino.image))
        return pixels, ids

    def noise(self, seed: int) -> torch.Tensor:
        """Initial DDIM noise [1, 16, 7], drawn as the deployed runtime draws it (runtime.noise), so
        a seed gives the same actions here and from the graphs."""
        return torch.from_numpy(draw_noise(seed, self._noise_shape))

    @property
    def _noise_shape(self) -> tuple[int, int, int]:
        return (1, self.cfg.dit.chunk, self.cfg.dit.action_dim)

    def _as_noise(self, noise) -> torch.Tensor:
        array = np.asarray(noise.detach().cpu().numpy() if isinstance(noise, torch.Tensor) else noise, np.float32)
        if array.size != int(np.prod(self._noise_shape)):
            raise UserError(f"noise has shape {array.shape}; the model takes {list(self._noise_shape)} "
                            "(standard normal, float32)")
        return torch.from_numpy(array.reshape(self._noise_shape).copy())

    def predict_normalized(self, image, instruction, noise) -> torch.Tensor:
        """`noise`: [1, 16, 7] (torch or numpy), e.g. `self.noise(seed)`."""
        pixels, ids = self.encode(image, instruction)
        return self.model(pixels, ids, self._as_noise(noise))[0]  # [16, 7]

    def predict(self, image, instruction: str, seed: int = 0, noise=None, unnorm_key=None) -> np.ndarray:
        """Un-normalized action chunk [16, 7]; the same seed (or noise) gives the same actions."""
        stats = self.statistics[self.unnorm_key(unnorm_key)]
        normalized = self.predict_normalized(image, instruction, self.noise(seed) if noise is None else noise)
        return unnormalize(normalized.numpy(), stats, self.postprocess)
