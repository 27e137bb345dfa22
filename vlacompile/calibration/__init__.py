"""Calibration: run the reference model over a calibration set and keep what the passes need.

Results are stored as JSON plus safetensors under a key that hashes the model weights, the
calibration data and the settings, so any later build of the same model and data reuses them,
whatever its --layers / --tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..fsutil import staged_folder
from .collect import Collector
from .hashing import data_hash, model_hash

SCHEMA = 1
MLP_CRITERION = "mean |silu(gate_j) * up_j| over calibration tokens x ||W_down[:, j]||_2"
DEFAULT_DIR = Path(".vlacompile-cache")


@dataclass
class Calibration:
    meta: dict  # what calibration.json holds
    mlp_scores: torch.Tensor  # [layers, intermediate]
    token_relevance: torch.Tensor  # [samples, visual tokens]
    path: Path | None = None

    @property
    def layer_importance(self) -> list[float]:
        return self.meta["layer_importance"]

    @property
    def model_hash(self) -> str:
        return self.meta["model_hash"]

    def ranking(self) -> list[int]:
        """Layers from least to most important."""
        return sorted(range(len(self.layer_importance)), key=self.layer_importance.__getitem__)


def run(policy, samples, select_layer: int = 2, progress: bool = True) -> Calibration:
    from tqdm import tqdm

    model = policy.model
    with Collector(model, select_layer) as col, torch.no_grad():
        for i, sample in enumerate(tqdm(samples, desc="calibrate", unit="sample", disable=not progress)):
            pixels, ids = policy.encode(sample.load_image(), sample.instruction)
            model(pixels, ids, policy.noise(i))
            col.end_sample()
    res = col.results()
    meta = {"schema": SCHEMA, "model": model.cfg.name, "model_hash": model_hash(model),
            "data_hash": data_hash(samples), "samples": len(samples), "select_layer": select_layer,
            "layer_importance": res["layer_importance"], "mlp_criterion": MLP_CRITERION,
            "token_relevance_mean": res["token_relevance"].mean(dim=0).tolist(),
            "dit_similarity": res["dit_similarity"]}
    return Calibration(meta, res["mlp_scores"], res["token_relevance"])


def key(policy, samples, select_layer: int) -> str:
    import hashlib

    text = f"{model_hash(policy.model)}:{data_hash(samples)}:{select_layer}:{SCHEMA}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(calib: Calibration, folder: Path) -> Path:
    from safetensors.torch import save_file

    with staged_folder(folder) as tmp:
        (tmp / "calibration.json").write_text(json.dumps(calib.meta, indent=1))
        save_file({"mlp_scores": calib.mlp_scores.contiguous(), "token_relevance": calib.token_relevance.contiguous()},
                  str(tmp / "tensors.safetensors"))
    calib.path = folder
    return folder


def load(folder: Path, policy=None) -> Calibration:
    """Read stored results; with `policy`, refuse results computed for other weights."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / "calibration.json").read_text())
        tensors = load_file(str(folder / "tensors.safetensors"))
        calib = Calibration(meta, tensors["mlp_scores"], tensors["token_relevance"], folder)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{folder}: not a readable calibration ({exc}); run `vlacompile calibrate` again") from None
    if meta.get("schema") != SCHEMA:
        raise UserError(f"{folder}: calibration schema {meta.get('schema')} != {SCHEMA}; run `vlacompile calibrate` again")
    if policy is not None and meta.get("model_hash") != model_hash(policy.model):
        raise UserError(f"{folder}: calibration of other weights ({meta.get('model')}, {meta.get('model_hash', '?')[:12]}) "
                        f"than {policy.source}; calibrate this model or pass its own calibration")
    return calib


def load_or_run(policy, samples, out_dir: Path = DEFAULT_DIR, select_layer: int = 2, progress: bool = True,
                force: bool = False) -> tuple[Calibration, bool]:
    """(results, reused): stored results for this model, data and settings, else a fresh run."""
    folder = Path(out_dir) / f"calib-{key(policy, samples, select_layer)}"
    if folder.exists() and not force:
        return load(folder, policy), True
    calib = run(policy, samples, select_layer, progress)
    save(calib, folder)
    return calib, False
