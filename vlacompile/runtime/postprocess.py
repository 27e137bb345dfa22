"""From normalized model output to robot actions, as a manifest's "postprocess" entry declares it.

Two kinds: CogACT's q01/q99 (clip, binarize the gripper, map [-1, 1] to [q01, q99]; field-notes §1,
Sampling) and pi0's mean/std (keep the first `dims` of the padded output, a * std + mean; LeRobot's
unnormalizer)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

UNNORMALIZE = "q01_q99"
FORMULA = "where mask[d]: 0.5 * (a[d] + 1) * (q99[d] - q01[d]) + q01[d]; else a[d]"


def declaration(gripper_dim: int, statistics: str = "dataset_statistics.json") -> dict:
    """The manifest's "postprocess" entry (docs/CONTRACT.md, Actions), applied in this order."""
    return {"input": "actions", "clip": [-1.0, 1.0], "gripper_dim": gripper_dim, "gripper_threshold": 0.5,
            "gripper_values": [0.0, 1.0], "unnormalize": UNNORMALIZE, "formula": FORMULA,
            "statistics": statistics, "mask_when_absent": True,
            "order": ["clip", "gripper", "unnormalize"]}


DEFAULT = declaration(6)  # CogACT's: the gripper is the 7th dimension
MEAN_STD = "mean_std"


def mean_std_declaration(dims: int, statistics: str = "dataset_statistics.json") -> dict:
    """pi0's "postprocess" entry: the graphs' output is padded to 32 dims; the robot's are the first `dims`."""
    return {"input": "actions", "dims": dims, "unnormalize": MEAN_STD, "formula": "a[..., :dims] * std + mean",
            "statistics": statistics, "order": ["slice", "unnormalize"]}


KNOWN = {UNNORMALIZE: DEFAULT["order"], MEAN_STD: ["slice", "unnormalize"]}
FIELDS = {UNNORMALIZE: ("q01", "q99", "mask"), MEAN_STD: ("mean", "std")}


def check(decl: dict) -> None:
    kind = decl.get("unnormalize")
    if kind not in KNOWN or decl.get("order") != KNOWN[kind]:
        raise UserError(f"the manifest's post-processing ({kind!r}, order {decl.get('order')}) is not one this "
                        f"runtime implements ({KNOWN}); upgrade vlacompile or export the graphs again")


def statistics_key(statistics: dict, key: str | None = None) -> str:
    """The dataset whose statistics un-normalize actions: `key`, or the only one there is."""
    if key is None and len(statistics) == 1:
        return next(iter(statistics))
    if key not in statistics:
        raise UserError(f"--unnorm-key must be one of {sorted(statistics)} (got {key!r})")
    return key


def check_statistics(statistics: dict, dims: int, source, kind: str = UNNORMALIZE) -> None:
    """Every dataset's action statistics has one q01, q99 (and mask) entry per action dimension, or
    one mean and std entry for `kind` mean_std."""
    for key, entry in statistics.items():
        action = entry.get("action", {}) if isinstance(entry, dict) else {}
        for field in FIELDS[kind]:
            value = action.get(field)
            if field == "mask" and value is None:
                continue
            if not isinstance(value, list) or len(value) != dims:
                got = len(value) if isinstance(value, list) else "no"
                raise UserError(f"{source}: statistics {key!r} has {got} action {field} values for a policy of "
                                f"{dims} action dimensions; use the dataset_statistics.json of this model")


def unnormalize(normalized: np.ndarray, stats: dict, decl: dict = DEFAULT) -> np.ndarray:
    """Clip, binarize the gripper at its threshold, map masked dims from [-1, 1] to [q01, q99].

    `stats` is one dataset's `{"action": {"q01", "q99", "mask"}}` entry of dataset_statistics.json.
    Non-finite input (a broken model or graph) is refused: clipping would turn NaN into a command.
    """
    check(decl)
    a = np.asarray(normalized, dtype=np.float64)
    if not np.isfinite(a).all():
        raise UserError("the policy produced non-finite actions (NaN or inf); the weights or graphs are broken: "
                        "check the checkpoint, or export and validate the graphs again")
    if decl["unnormalize"] == MEAN_STD:
        action = stats["action"]
        mean, std = (np.asarray(action[k], dtype=np.float64) for k in ("mean", "std"))
        return (a[..., : decl["dims"]] * std + mean).astype(np.float32)
    low, high = decl["clip"]
    a = np.clip(a, low, high)
    g = decl["gripper_dim"]
    off, on = decl["gripper_values"]
    a[..., g] = np.where(a[..., g] >= decl["gripper_threshold"], on, off)
    action = stats["action"]
    q01, q99 = np.asarray(action["q01"], dtype=np.float64), np.asarray(action["q99"], dtype=np.float64)
    mask = np.asarray(action.get("mask", np.ones_like(q01, dtype=bool)), dtype=bool)
    return np.where(mask, 0.5 * (a + 1) * (q99 - q01) + q01, a)
