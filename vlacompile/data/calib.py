"""Calibration data: a folder with a JSON Lines manifest and RGB images.

    DIR/manifest.jsonl   one JSON object per line:
        {"image": "images/ep00_step00.png",   path relative to DIR (required)
         "instruction": "pick up the red block", non-empty (required)
         "episode": 0, "step": 0,              integers (optional)
         "state": [0.4, 0.0, 0.3, 0.0, 1.0]}   the robot state, numbers (required by pi0, unread by CogACT)
    DIR/images/...       RGB images, at least 224x224 (they are resized to 224 bicubic, no crop)

Every sample is checked when the set is loaded, so a bad line fails before a long calibration run,
with an error naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError

from ..errors import UserError

MANIFEST = "manifest.jsonl"
MIN_SIZE = 224


@dataclass(frozen=True)
class CalibSample:
    image_path: Path
    instruction: str
    episode: int | None = None
    step: int | None = None
    state: tuple[float, ...] | None = None  # observation.state at the frame (pi0 reads it)

    def load_image(self) -> Image.Image:
        with Image.open(self.image_path) as im:
            return im.convert("RGB")

    def loaded(self) -> "LoadedSample":
        return LoadedSample(self.image_path, self.instruction, self.episode, self.step, self.state, self.load_image())


@dataclass(frozen=True)
class LoadedSample(CalibSample):
    """A sample whose image is decoded once (timed and repeated calls read it from memory)."""

    image: Image.Image | None = None

    def load_image(self) -> Image.Image:
        return self.image

    def loaded(self) -> "LoadedSample":
        return self


def _check_image(path: Path, where: str) -> None:
    if not path.is_file():
        raise UserError(f"{where}: image {path} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            mode, size = im.mode, im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"{where}: image {path} is unreadable ({exc})") from None
    if mode != "RGB":
        raise UserError(f"{where}: image {path} is {mode}, expected RGB; convert it (PIL: im.convert('RGB'))")
    if min(size) < MIN_SIZE:
        raise UserError(f"{where}: image {path} is {size[0]}x{size[1]}, expected at least {MIN_SIZE}x{MIN_SIZE}")


def _parse_line(root: Path, text: str, where: str) -> CalibSample:
    try:
        rec = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{where}: malformed JSON ({exc})") from None
    if not isinstance(rec, dict):
        raise UserError(f"{where}: expected a JSON object with 'image' and 'instruction'")
    image, instruction = rec.get("image"), rec.get("instruction")
    if not isinstance(image, str) or not image:
        raise UserError(f"{where}: 'image' must be a path relative to {root}")
    if PurePosixPath(image).is_absolute() or Path(image).is_absolute() or ".." in PurePosixPath(image).parts:
        raise UserError(f"{where}: 'image' {image!r} must be a path inside {root} (relative, no '..'); copy the "
                        "image into the calibration folder")
    if not isinstance(instruction, str) or not instruction.strip():
        raise UserError(f"{where}: 'instruction' is missing or empty")
    for key in ("episode", "step"):
        if key in rec and (not isinstance(rec[key], int) or isinstance(rec[key], bool)):
            raise UserError(f"{where}: '{key}' must be an integer (got {rec[key]!r})")
    state = rec.get("state")
    if state is not None and (not isinstance(state, list) or not state
                              or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in state)):
        raise UserError(f"{where}: 'state' must be a list of numbers (the robot state at the frame)")
    path = root / image
    _check_image(path, where)
    return CalibSample(path, instruction.strip(), rec.get("episode"), rec.get("step"),
                       None if state is None else tuple(float(x) for x in state))


def load_calib(root: str | Path) -> list[CalibSample]:
    root = Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise UserError(f"{manifest} does not exist; a calibration folder holds {MANIFEST} and its images")
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = manifest.read_bytes()[: exc.start].count(b"\n") + 1
        raise UserError(f"{manifest}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the manifest "
                        "as UTF-8") from None
    samples = []
    for n, text in enumerate(lines, start=1):
        if text.strip():
            samples.append(_parse_line(root, text, f"{manifest}:{n}"))
    if not samples:
        raise UserError(f"{manifest} has no samples")
    return samples


def split_heldout(samples: list[CalibSample], fraction: float = 0.2,
                  where: str | Path = "the calibration data") -> tuple[list[CalibSample], list[CalibSample]]:
    """(calibration, held out): the last `fraction` of episodes (at least one) are held out whole,
    so fidelity is measured on scenes calibration never saw. Without episodes, the last samples.
    Both parts must hold a sample."""
    if len(samples) < 2:
        raise UserError(f"{where}: {len(samples)} sample(s); calibration needs at least 2, one to calibrate on and one "
                        "held out (the last episode) to measure fidelity")
    episodes = sorted({s.episode for s in samples if s.episode is not None})
    if len(episodes) >= 2:
        held = set(episodes[len(episodes) - max(1, int(len(episodes) * fraction)):])
        return [s for s in samples if s.episode not in held], [s for s in samples if s.episode in held]
    cut = len(samples) - max(1, int(len(samples) * fraction))
    return samples[:cut], samples[cut:]


def spread(samples: list[CalibSample], n: int) -> list[CalibSample]:
    """`n` samples evenly spaced over the set (so over its episodes), in order; all of them if fewer."""
    if n >= len(samples):
        return list(samples)
    return [samples[i * len(samples) // n] for i in range(n)]
