"""From normalized DiT output to robot actions (field-notes §1, Sampling)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

GRIPPER = 6


def statistics_key(statistics: dict, key: str | None = None) -> str:
    """The dataset whose statistics un-normalize actions: `key`, or the only one there is."""
    if key is None and len(statistics) == 1:
        return next(iter(statistics))
    if key not in statistics:
        raise UserError(f"--unnorm-key must be one of {sorted(statistics)} (got {key!r})")
    return key


def check_statistics(statistics: dict, dims: int, source) -> None:
    """Every dataset's action statistics has one q01, q99 (and mask) entry per action dimension."""
    for key, entry in statistics.items():
        action = entry.get("action", {}) if isinstance(entry, dict) else {}
        for field in ("q01", "q99", "mask"):
            value = action.get(field)
            if field == "mask" and value is None:
                continue
            if not isinstance(value, list) or len(value) != dims:
                got = len(value) if isinstance(value, list) else "no"
                raise UserError(f"{source}: statistics {key!r} has {got} action {field} values for a policy of "
                                f"{dims} action dimensions; use the dataset_statistics.json of this model")


def unnormalize(normalized: np.ndarray, stats: dict) -> np.ndarray:
    """Clip to [-1, 1], binarize the gripper at 0.5, map masked dims from [-1, 1] to [q01, q99].

    `stats` is one dataset's `{"action": {"q01", "q99", "mask"}}` entry of dataset_statistics.json.
    """
    a = np.clip(np.asarray(normalized, dtype=np.float64), -1.0, 1.0)
    a[..., GRIPPER] = np.where(a[..., GRIPPER] >= 0.5, 1.0, 0.0)
    action = stats["action"]
    q01, q99 = np.asarray(action["q01"], dtype=np.float64), np.asarray(action["q99"], dtype=np.float64)
    mask = np.asarray(action.get("mask", np.ones_like(q01, dtype=bool)), dtype=bool)
    return np.where(mask, 0.5 * (a + 1) * (q99 - q01) + q01, a)
