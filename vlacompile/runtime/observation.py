"""What a pi0-style manifest adds to the image and the instruction: camera slots and the robot state.

"cameras": the graphs take one image per slot, [1, C, 3, S, S]; a slot with no image is filled with
`absent.fill` and marked invalid in `valid_input` [1, C] (bool), as LeRobot fills a missing camera.
"state": `dims` values, normalized as declared ((s - mean) / (std + eps)) with the statistics' entry,
then zero-padded to `pad_to`: [1, pad_to] float32.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .image import as_rgb
from .preprocess import preprocess


def check(manifest: dict, statistics: dict, source) -> None:
    """Refuse a state normalization this code does not implement, or statistics that cannot apply it."""
    state = manifest["state"]
    if state.get("normalize") != "mean_std":
        raise UserError(f"the manifest's state normalization {state.get('normalize')!r} is not one this runtime "
                        "implements ('mean_std'); upgrade vlacompile or export the graphs again")
    for key, entry in statistics.items():
        values = entry.get(state["statistics"], {}) if isinstance(entry, dict) else {}
        if any(not isinstance(values.get(k), list) or len(values[k]) != state["dims"] for k in ("mean", "std")):
            raise UserError(f"{source}: statistics {key!r} lack a {state['statistics']!r} mean and std of "
                            f"{state['dims']} values; use the dataset_statistics.json these graphs were exported with")


def cameras(images, decl: dict, preprocess_decl: dict) -> dict[str, np.ndarray]:
    """One image, or a list in slot order -> {pixels, valid} inputs."""
    images = list(images) if isinstance(images, (list, tuple)) else [images]
    slots = decl["slots"]
    if not 1 <= len(images) <= len(slots):
        raise UserError(f"got {len(images)} camera images; these graphs take 1 to {len(slots)} "
                        f"({', '.join(slots)}), in that order")
    size = preprocess_decl["size"]
    pixels = np.full((1, len(slots), 3, size, size), decl["absent"]["fill"], dtype=np.float32)
    valid = np.zeros((1, len(slots)), dtype=bool)
    for slot, image in enumerate(images):
        pixels[0, slot], valid[0, slot] = preprocess(as_rgb(image), preprocess_decl)[0], True
    return {decl["input"]: pixels, decl["valid_input"]: valid}


def state(values, decl: dict, statistics: dict) -> dict[str, np.ndarray]:
    """The robot state -> {state input}, normalized and padded as declared."""
    if values is None:
        raise UserError(f"these graphs read the robot state: pass --state with {decl['dims']} numbers "
                        "(observation.state)")
    s = np.asarray(values, dtype=np.float64).reshape(-1)
    if s.shape != (decl["dims"],) or not np.isfinite(s).all():
        raise UserError(f"the state has {s.size} values{'' if np.isfinite(s).all() else ' (not all finite)'}; "
                        f"these graphs take {decl['dims']} finite numbers (observation.state)")
    entry = statistics[decl["statistics"]]
    mean, std = (np.asarray(entry[k], dtype=np.float64) for k in ("mean", "std"))
    out = np.zeros((1, decl["pad_to"]), dtype=np.float32)
    out[0, : decl["dims"]] = (s - mean) / (std + decl["eps"])
    return {decl["input"]: out}
