"""A pi0 policy: model, tokenizer and statistics; camera images + instruction + state -> [50, A] actions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...errors import UserError
from .config import Pi0Config
from .model import Pi0
from .preprocess import camera_batch
from .statistics import ACTION, STATE, Statistics
from .tokenizer import PromptTokenizer

ASSETS = Path(__file__).parent / "assets"
TINY_TOKENIZER = ASSETS / "tiny-tokenizer.json"
TINY_STATISTICS = ASSETS / "tiny-statistics.json"
# openpi's camera slots (models/model.py IMAGE_KEYS), under LeRobot's feature prefix.
CAMERA_NAMES = tuple(f"observation.images.{k}" for k in ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"))


def tiny_statistics() -> Statistics:
    stats = json.loads(TINY_STATISTICS.read_text())
    arrays = (np.asarray(stats[f][s], dtype=np.float32) for f in (STATE, ACTION) for s in ("mean", "std"))
    return Statistics(*arrays)


def camera_names(count: int) -> list[str]:
    return list(CAMERA_NAMES[:count]) + [f"observation.images.camera_{i}" for i in range(len(CAMERA_NAMES), count)]


@dataclass
class Pi0Policy:
    model: Pi0
    tokenizer: PromptTokenizer
    statistics: Statistics
    source: str
    cameras: list[str]  # the camera slots' feature names, in the order images are given

    @property
    def cfg(self) -> Pi0Config:
        return self.model.cfg

    def _check(self, images: list, state: np.ndarray) -> None:
        if not 1 <= len(images) <= self.cfg.cameras:
            raise UserError(f"got {len(images)} camera images; {self.cfg.name} takes 1 to {self.cfg.cameras} "
                            f"({', '.join(self.cameras)}), in that order")
        if state.shape != (self.statistics.state_dim,):
            raise UserError(f"the state has shape {state.shape}; this policy takes a vector of "
                            f"{self.statistics.state_dim} values (observation.state)")

    def encode(self, images: list[Image.Image], instruction: str, state) -> dict[str, torch.Tensor]:
        """The model's inputs, batch 1: pixels [1, C, 3, 224, 224], image_valid [1, C], ids and ids_valid
        [1, 48], state [1, 32] (normalized, zero-padded). `images`: one per camera slot, in slot order."""
        images = [images] if isinstance(images, Image.Image) else list(images)
        state = np.asarray(state, dtype=np.float32)
        self._check(images, state)
        pixels, image_valid = camera_batch(images, self.cfg.cameras, self.cfg.siglip.image)
        ids, ids_valid = self.tokenizer.encode(instruction, self.cfg.prompt_len)
        padded = np.zeros((1, self.cfg.max_state_dim), dtype=np.float32)
        padded[0, : state.shape[0]] = self.statistics.normalize_state(state)
        return {"pixels": torch.from_numpy(pixels), "image_valid": torch.from_numpy(image_valid),
                "ids": torch.tensor([ids]), "ids_valid": torch.tensor([ids_valid]), "state": torch.from_numpy(padded)}

    def calibration_forward(self, sample, noise: torch.Tensor) -> torch.Tensor:
        """The reference forward on one calibration sample (data.calib.CalibSample), its image in the
        first camera slot; calibration's hooks watch it. pi0 needs the sample's robot state."""
        if sample.state is None or len(sample.state) != self.statistics.state_dim:
            have = "no 'state'" if sample.state is None else f"a 'state' of {len(sample.state)} values"
            raise UserError(f"calibration sample {sample.image_path} has {have}; pi0 reads the robot state: give each "
                            f"manifest line \"state\": [{self.statistics.state_dim} numbers]")
        return self.model(**self.encode([sample.load_image()], sample.instruction, sample.state), noise=noise)

    def noise(self, seed: int) -> torch.Tensor:
        """[1, 50, 32]: numpy's default_rng(seed), the project's one meaning of --seed."""
        shape = (self.cfg.horizon, self.cfg.max_action_dim)
        return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))[None]

    def predict_normalized(self, images, instruction: str, state, noise: torch.Tensor) -> torch.Tensor:
        """Normalized, padded actions [50, 32]."""
        return self.model(**self.encode(images, instruction, state), noise=noise)[0]

    def predict(self, images, instruction: str, state, seed: int = 0, noise=None) -> np.ndarray:
        """Un-normalized action chunk [50, action_dim]; the same seed (or noise) gives the same actions."""
        normalized = self.predict_normalized(images, instruction, state, self.noise(seed) if noise is None else noise)
        return self.statistics.unnormalize_actions(normalized[:, : self.statistics.action_dim].numpy())


def synthetic_policy(name: str = "pi0-tiny") -> Pi0Policy:
    """A preset with seeded synthetic weights, the tiny tokenizer and placeholder statistics."""
    from .build import synthetic
    from .config import PRESETS

    cfg = PRESETS[name]
    tokenizer = PromptTokenizer(TINY_TOKENIZER)
    return Pi0Policy(synthetic(cfg), tokenizer, tiny_statistics(), name, camera_names(cfg.cameras))
