"""Reading and writing CogACT checkpoints in the released folder layout (field-notes §1).

    FOLDER/config.json
    FOLDER/dataset_statistics.json
    FOLDER/checkpoints/<name>.pt            {"model": {"vision_backbone": {...}, "projector": {...},
                                                       "llm_backbone": {...}, "action_model": {...}}}
    (or FOLDER/checkpoints/<name>.safetensors, the same state with "<part>." key prefixes)
    FOLDER/tokenizer.json                    Llama tokenizer (the released folder has none: copy it
                                             from the Llama-2-7b-hf repository)

Files are read with `torch.load(weights_only=True)`: nothing in a checkpoint is ever executed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ...errors import UserError
from ...fsutil import staged_folder
from .build import from_state, infer_preset
from .config import PRESETS
from .model import PARTS
from .policy import CogACTPolicy, read_statistics
from .prompt import PromptTokenizer

WEIGHT_SUFFIXES = (".pt", ".safetensors")


def find_weights(folder: Path) -> Path:
    found = sorted(p for p in (folder / "checkpoints").glob("*") if p.suffix in WEIGHT_SUFFIXES)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise UserError(f"{folder / 'checkpoints'}: {what} .pt/.safetensors files; keep exactly one")
    return found[0]


def _read_pt(path: Path) -> dict:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # a corrupt or non-weights file; the message is the useful part
        raise UserError(f"{path}: not a readable weights-only checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("model"), dict):
        raise UserError(f'{path}: expected {{"model": {{{", ".join(PARTS)}}}}} as in the released checkpoints')
    parts = blob["model"]
    missing = [p for p in PARTS if not isinstance(parts.get(p), dict)]
    if missing:
        raise UserError(f"{path}: the 'model' dict lacks the parts {missing}")
    return {f"{part}.{k}": v for part in PARTS for k, v in parts[part].items()}


def _read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise UserError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Flat state dict with "<part>." prefixes, from a .pt or .safetensors file."""
    return _read_pt(path) if path.suffix == ".pt" else _read_safetensors(path)


def check_finite(state: dict[str, torch.Tensor], source: Path) -> None:
    """A NaN or inf weight makes every action NaN: refuse it at load, naming the first tensor. (This
    reads every weight once; for a 7.6 B checkpoint that is part of loading it anyway.)"""
    for name, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise UserError(f"{source}: weight {name} holds NaN or inf values; the checkpoint is damaged or came "
                            "from a diverged run")


def load_folder(folder: str | Path, preset: str | None = None) -> CogACTPolicy:
    folder = Path(folder)
    for name in ("config.json", "dataset_statistics.json", "tokenizer.json"):
        if not (folder / name).is_file():
            raise UserError(f"{folder}: no {name}; a CogACT folder holds config.json, dataset_statistics.json, "
                            "tokenizer.json and checkpoints/<name>.pt")
    try:
        json.loads((folder / "config.json").read_text())
    except ValueError as exc:
        raise UserError(f"{folder / 'config.json'}: not valid JSON ({exc})") from None
    weights = find_weights(folder)
    state = read_state(weights)
    check_finite(state, weights)
    cfg = PRESETS[preset] if preset else infer_preset(state, str(weights))
    model = from_state(cfg, state, str(weights))
    tokenizer = PromptTokenizer(folder / "tokenizer.json")
    if tokenizer.vocab_size > cfg.llm.vocab:
        raise UserError(f"{folder / 'tokenizer.json'} has {tokenizer.vocab_size} tokens, more than the model's "
                        f"{cfg.llm.vocab}: it belongs to another model")
    statistics = read_statistics(folder / "dataset_statistics.json", cfg.dit.action_dim)
    return CogACTPolicy(model, tokenizer, statistics, str(folder))


def save_folder(policy: CogACTPolicy, folder: str | Path, fmt: str = "pt") -> Path:
    """Write `policy` in the released layout; written under a temporary name, then renamed."""
    folder = Path(folder)
    if folder.exists():
        raise UserError(f"{folder} exists; choose a new folder or remove it")
    with staged_folder(folder, replace=False) as tmp:
        _write(policy, tmp, fmt)
    return folder


def _write(policy: CogACTPolicy, out: Path, fmt: str) -> None:
    cfg = policy.cfg
    config = {"vlacompile_preset": cfg.name, "action_model_type": cfg.dit_variant, "action_dim": cfg.dit.action_dim,
              "future_action_window_size": cfg.dit.chunk - 1, "past_action_window_size": 0}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "dataset_statistics.json").write_text(json.dumps(policy.statistics, indent=2))
    shutil.copyfile(policy.tokenizer.path, out / "tokenizer.json")
    (out / "checkpoints").mkdir()
    state = {k: v.contiguous() for k, v in policy.model.state_dict().items()}
    if fmt == "pt":
        parts = {p: {k[len(p) + 1:]: v for k, v in state.items() if k.startswith(p + ".")} for p in PARTS}
        torch.save({"model": parts}, out / "checkpoints" / f"{cfg.name}.pt")
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(out / "checkpoints" / f"{cfg.name}.safetensors"))
    else:
        raise UserError(f"unknown checkpoint format {fmt!r}; use pt or safetensors")
