"""Reading and writing pi0 checkpoints in LeRobot's pretrained-folder layout (docs/PI0.md §8).

    FOLDER/model.safetensors            PI0Policy.state_dict(): every key prefixed "model."
    FOLDER/config.json                  PI0Config ({"type": "pi0", "input_features", "chunk_size", ...};
                                        vlacompile adds "vlacompile_noise_scale", the sampling temperature)
    FOLDER/policy_preprocessor.json     + policy_preprocessor_step_<i>_normalizer_processor.safetensors
    FOLDER/policy_postprocessor.json    + policy_postprocessor_step_0_unnormalizer_processor.safetensors
    FOLDER/tokenizer.json               PaliGemma's tokenizer (LeRobot folders have none: copy it from
                                        google/paligemma-3b-pt-224)

Two key differences from our module are known and handled as LeRobot's `from_pretrained` does:
- released files hold `paligemma.lm_head.weight` but no `language_model.embed_tokens.weight` (the two
  are tied and safetensors keeps one name): the head becomes the embedding table;
- `gemma_expert.lm_head.weight` is stored but never used by pi0: it is dropped.
And one naming variant: transformers 5.23 has no `vision_model.` level in SiglipVisionModel, which
LeRobot 0.6 (pinned to transformers 5.4-5.5) and openpi save; a file without it gets it back.
Everything else must match exactly.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from ...errors import UserError
from ...fsutil import staged_folder
from .build import from_state, infer_preset
from .config import PRESETS, Pi0Config
from .policy import Pi0Policy
from .statistics import ACTION, STATE, read_statistics, write_statistics
from .tokenizer import PromptTokenizer

PREFIX = "model."
WEIGHTS = "model.safetensors"
LM_HEAD = "paligemma_with_expert.paligemma.lm_head.weight"
EMBED = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
EXPERT_LM_HEAD = "paligemma_with_expert.gemma_expert.lm_head.weight"
VISION_MODEL = ".vision_tower.vision_model."
FILES = (WEIGHTS, "config.json", "policy_preprocessor.json", "tokenizer.json")
NOISE_SCALE = "vlacompile_noise_scale"  # config.json: the sampling temperature (config.FlowConfig.noise_scale)


def _refuse_other_families(folder: Path) -> None:
    cogact = (folder / "checkpoints").is_dir() or (folder / "dataset_statistics.json").is_file()
    if cogact and not (folder / WEIGHTS).is_file():
        raise UserError(f"{folder}: a CogACT checkpoint folder (checkpoints/, dataset_statistics.json), not pi0; "
                        f"a pi0 folder holds {', '.join(FILES)}")


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise UserError(f"{folder}: no config.json; a LeRobot pi0 folder holds {', '.join(FILES)}")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc})") from None
    kind = config.get("type") if isinstance(config, dict) else None
    if kind != "pi0":
        raise UserError(f"{path}: policy type is {kind!r}, not 'pi0'; this loader reads LeRobot pi0 checkpoints only")
    return config


def _load(path: Path, shapes_only: bool) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, or (shapes_only) meta tensors of their shapes, read from
    the header alone: `info` on pi0-base's folder needs shapes, not its 13 GB."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        if not shapes_only:
            return load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}
    except Exception as exc:  # corrupt or not safetensors; the message is the useful part
        raise UserError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None


def read_weights(path: Path, shapes_only: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """(state with our key names, the prefix the file used); lm_heads handled as the module docstring says."""
    state = _load(path, shapes_only)
    prefix = PREFIX if state and all(k.startswith(PREFIX) for k in state) else ""
    state = {k[len(prefix):]: v for k, v in state.items()}
    if not any(VISION_MODEL in k for k in state):  # saved through a transformers with a flattened SigLIP
        state = {k.replace(".vision_tower.", VISION_MODEL): v for k, v in state.items()}
    state.pop(EXPERT_LM_HEAD, None)
    head = state.pop(LM_HEAD, None)
    if head is not None and EMBED not in state:
        state[EMBED] = head
    return state, prefix


def _with_config(cfg: Pi0Config, config: dict, cameras: int, path: Path) -> Pi0Config:
    """The run-time counts a LeRobot config sets (the weights fix only the widths and depths)."""
    flow = replace(cfg.flow, steps=config.get("num_inference_steps", cfg.flow.steps),
                   min_period=config.get("min_period", cfg.flow.min_period),
                   max_period=config.get("max_period", cfg.flow.max_period),
                   noise_scale=_noise_scale(config.get(NOISE_SCALE, cfg.flow.noise_scale), path))
    return replace(cfg, cameras=cameras, horizon=config.get("chunk_size", cfg.horizon),
                   prompt_len=config.get("tokenizer_max_length", cfg.prompt_len), flow=flow)


def configured(folder: Path, cfg: Pi0Config) -> Pi0Config:
    """`cfg` (the weights' preset) with the run-time settings of the folder's config.json, as
    load_folder applies them (for `info`, which reads no weights)."""
    config, path = read_config(folder), folder / "config.json"
    return _with_config(cfg, config, len(_cameras(config, path)), path)


def _noise_scale(value, path: Path) -> float:
    """vlacompile's own key (LeRobot has none; absent, the preset's value: pi0's 1 for pi0-base)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
        raise UserError(f"{path}: {NOISE_SCALE} is {value!r}; give the initial noise's standard deviation, a number "
                        "from 0 to 10 (pi0 samples at 1)")
    return float(value)


def _cameras(config: dict, path: Path) -> list[str]:
    features = config.get("input_features") or {}
    names = [k for k, f in features.items() if isinstance(f, dict) and f.get("type") == "VISUAL"]
    names += [f"observation.images.empty_camera_{i}" for i in range(int(config.get("empty_cameras", 0)))]
    if not names:
        raise UserError(f"{path}: input_features has no VISUAL feature; pi0 needs at least one camera")
    return names


def _check_dims(cfg: Pi0Config, stats, config: dict, folder: Path) -> None:
    limits = (("state", stats.state_dim, cfg.max_state_dim), ("action", stats.action_dim, cfg.max_action_dim))
    for what, dim, limit in limits:
        if dim > limit:
            raise UserError(f"{folder}: the {what} statistics have {dim} values, more than the model's {limit}")
    for key, dim, where in ((STATE, stats.state_dim, "input_features"), (ACTION, stats.action_dim, "output_features")):
        shape = (config.get(where) or {}).get(key, {}).get("shape")
        if shape is not None and list(shape) != [dim]:
            raise UserError(f"{folder / 'config.json'}: {where}.{key} has shape {shape} but its statistics "
                            f"{dim} values")


def load_folder(folder: str | Path, preset: str | None = None) -> Pi0Policy:
    folder = Path(folder)
    _refuse_other_families(folder)
    config = read_config(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise UserError(f"{folder}: no {name}; a LeRobot pi0 folder holds {', '.join(FILES)}")
    state, prefix = read_weights(folder / WEIGHTS)
    source = str(folder / WEIGHTS)
    cfg = PRESETS[preset] if preset else infer_preset(state, source, prefix)
    cameras = _cameras(config, folder / "config.json")
    cfg = _with_config(cfg, config, len(cameras), folder / "config.json")
    stats = read_statistics(folder)
    _check_dims(cfg, stats, config, folder)
    tokenizer = PromptTokenizer(folder / "tokenizer.json")
    if tokenizer.vocab_size > cfg.vlm.vocab:
        raise UserError(f"{folder / 'tokenizer.json'} has {tokenizer.vocab_size} tokens, more than the model's "
                        f"{cfg.vlm.vocab}: it belongs to another model")
    return Pi0Policy(from_state(cfg, state, source, prefix), tokenizer, stats, str(folder), cameras)


def save_folder(policy: Pi0Policy, folder: str | Path) -> Path:
    """Write `policy` in LeRobot's layout (as the released pi0_base stores it); staged, then renamed."""
    folder = Path(folder)
    if folder.exists():
        raise UserError(f"{folder} exists; choose a new folder or remove it")
    with staged_folder(folder, replace=False) as tmp:
        write_folder(policy, tmp)
    return folder


def _config_json(policy: Pi0Policy) -> dict:
    cfg, stats = policy.cfg, policy.statistics
    image = [3, cfg.siglip.image, cfg.siglip.image]
    inputs = {name: {"type": "VISUAL", "shape": image} for name in policy.cameras}
    inputs[STATE] = {"type": "STATE", "shape": [stats.state_dim]}
    config = {"type": "pi0", "vlacompile_preset": cfg.name, "n_obs_steps": 1, "input_features": inputs,
              "output_features": {ACTION: {"type": "ACTION", "shape": [stats.action_dim]}}, "device": "cpu",
              "dtype": "float32", "chunk_size": cfg.horizon, "n_action_steps": cfg.horizon,
              "max_state_dim": cfg.max_state_dim, "max_action_dim": cfg.max_action_dim,
              "num_inference_steps": cfg.flow.steps, "min_period": cfg.flow.min_period,
              "max_period": cfg.flow.max_period, NOISE_SCALE: cfg.flow.noise_scale,
              "image_resolution": [cfg.siglip.image, cfg.siglip.image], "empty_cameras": 0,
              "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
              "tokenizer_max_length": cfg.prompt_len}
    if cfg.name == "pi0-base":
        config.update(paligemma_variant="gemma_2b", action_expert_variant="gemma_300m")
    return config


def _released_state(policy: Pi0Policy) -> dict[str, torch.Tensor]:
    """Our state as pi0_base stores it: embedding under lm_head, a (never read) expert lm_head, "model." prefix."""
    state = {k: v.contiguous() for k, v in policy.model.state_dict().items()}
    state[LM_HEAD] = state.pop(EMBED)
    vocab, width = state[LM_HEAD].shape[0], policy.cfg.expert.width
    state[EXPERT_LM_HEAD] = torch.zeros(vocab, width, dtype=state[LM_HEAD].dtype)
    return {PREFIX + k: v for k, v in state.items()}


def write_folder(policy: Pi0Policy, out: Path) -> None:
    """The folder's files into `out` (an empty, staged folder)."""
    from safetensors.torch import save_file

    save_file(_released_state(policy), str(out / WEIGHTS))
    (out / "config.json").write_text(json.dumps(_config_json(policy), indent=4))
    write_statistics(out, policy.statistics, policy.cameras, policy.cfg.siglip.image, policy.cfg.prompt_len)
    shutil.copyfile(policy.tokenizer.path, out / "tokenizer.json")
