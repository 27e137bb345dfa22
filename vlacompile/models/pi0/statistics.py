"""Normalization statistics as LeRobot saves them in a pretrained folder (docs/PI0.md §8).

LeRobot's processor pipelines save a JSON of their steps plus one safetensors file per stateful step:

    policy_preprocessor.json        {"name", "steps": [{"registry_name", "config", "state_file"?}, ...]}
    policy_preprocessor_step_<i>_normalizer_processor.safetensors    {"observation.state.mean": ..., "action.std": ...}
    policy_postprocessor.json
    policy_postprocessor_step_0_unnormalizer_processor.safetensors

The normalizer's tensors are named "<feature>.<stat>". pi0 normalizes state and action with MEAN_STD:
(x - mean) / (std + eps), eps 1e-8, and un-normalizes actions with x * std + mean (no eps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UserError

STATE, ACTION = "observation.state", "action"
REQUIRED = tuple(f"{feature}.{stat}" for feature in (STATE, ACTION) for stat in ("mean", "std"))
PREPROCESSOR, POSTPROCESSOR = "policy_preprocessor.json", "policy_postprocessor.json"
NORMALIZER, UNNORMALIZER = "normalizer_processor", "unnormalizer_processor"
EPS = 1e-8  # LeRobot's NormalizerProcessorStep default


@dataclass(frozen=True)
class Statistics:
    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    eps: float = EPS

    @property
    def state_dim(self) -> int:
        return self.state_mean.shape[0]

    @property
    def action_dim(self) -> int:
        return self.action_mean.shape[0]

    def normalize_state(self, state: np.ndarray) -> np.ndarray:
        return ((state - self.state_mean) / (self.state_std + self.eps)).astype(np.float32)

    def unnormalize_actions(self, actions: np.ndarray) -> np.ndarray:
        return (actions * self.action_std + self.action_mean).astype(np.float32)

    def tensors(self) -> dict[str, np.ndarray]:
        return dict(zip(REQUIRED, (self.state_mean, self.state_std, self.action_mean, self.action_std)))


def _normalizer_entry(path: Path) -> dict:
    try:
        steps = json.loads(path.read_text())["steps"]
        return next(s for s in steps if s.get("registry_name") == NORMALIZER and s.get("state_file"))
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        raise UserError(f"{path}: no {NORMALIZER} step with a state_file; save the policy's preprocessor with "
                        "LeRobot (policy_preprocessor.save_pretrained)") from None


def _mean_std_only(path: Path, entry: dict) -> None:
    modes = entry.get("config", {}).get("norm_map", {})
    for kind in ("STATE", "ACTION"):
        if modes.get(kind, "MEAN_STD") != "MEAN_STD":
            raise UserError(f"{path}: {kind} uses {modes[kind]} normalization; pi0 here supports MEAN_STD only")


def read_statistics(folder: str | Path) -> Statistics:
    """State and action mean/std from a LeRobot pretrained folder's preprocessor; refuses anything less."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    entry = _normalizer_entry(folder / PREPROCESSOR)
    _mean_std_only(folder / PREPROCESSOR, entry)
    path = folder / entry["state_file"]
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # missing or corrupt; the message is the useful part
        raise UserError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    missing = [k for k in REQUIRED if k not in tensors]
    if missing:
        raise UserError(f"{path}: the statistics lack {', '.join(missing)}; pi0 needs mean and std for "
                        f"{STATE} and {ACTION}")
    eps = float(entry.get("config", {}).get("eps", EPS))
    return Statistics(*(tensors[k].astype(np.float32).reshape(-1) for k in REQUIRED), eps=eps)


def _features(stats: Statistics, cameras: list[str], image: int) -> dict:
    visual = {name: {"type": "VISUAL", "shape": [3, image, image]} for name in cameras}
    return {**visual, STATE: {"type": "STATE", "shape": [stats.state_dim]},
            ACTION: {"type": "ACTION", "shape": [stats.action_dim]}}


def _normalizer_config(stats: Statistics, features: dict) -> dict:
    return {"eps": stats.eps, "features": features,
            "norm_map": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}}


def _write_pipeline(folder: Path, name: str, steps: list[tuple[str, dict]], stateful: int, tensors: dict) -> None:
    """`<name>.json` and its one stateful step's tensors, named as LeRobot's pipeline names them."""
    from safetensors.numpy import save_file

    entries = [{"registry_name": registry, "config": config} for registry, config in steps]
    state_file = f"{name}_step_{stateful}_{steps[stateful][0]}.safetensors"
    entries[stateful]["state_file"] = state_file
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "steps": entries}, indent=2))
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(folder / state_file))


def write_statistics(folder: Path, stats: Statistics, cameras: list[str], image: int, prompt_len: int) -> None:
    """LeRobot 0.6's pi0 processor files (make_pi0_pre_post_processors), steps in LeRobot's order: the
    normalizer's index (6) is part of its file name. Only the (un)normalizer entries are read back."""
    features = _features(stats, cameras, image)
    tokenizer = {"max_length": prompt_len, "task_key": "task", "padding_side": "right", "padding": "max_length",
                 "truncation": True, "tokenizer_name": "google/paligemma-3b-pt-224"}
    device = {"device": "cpu", "float_dtype": None}
    pre = [("rename_observations_processor", {"rename_map": {}}), ("to_batch_processor", {}),
           ("pi0_new_line_processor", {}), ("tokenizer_processor", tokenizer), ("device_processor", device),
           ("relative_actions_processor", {"enabled": False, "exclude_joints": ["gripper"], "action_names": None}),
           (NORMALIZER, _normalizer_config(stats, features))]
    post = [(UNNORMALIZER, _normalizer_config(stats, {ACTION: features[ACTION]})),
            ("absolute_actions_processor", {"enabled": False}), ("device_processor", device)]
    tensors = stats.tensors()
    _write_pipeline(folder, "policy_preprocessor", pre, 6, tensors)
    _write_pipeline(folder, "policy_postprocessor", post, 0, {k: v for k, v in tensors.items() if k.startswith(ACTION)})
