"""Calibration: run the reference model over a calibration set and keep what the passes need.

Results are stored as JSON plus safetensors under a key that hashes the model (its weights and its
sampler's settings), the calibration data and the settings, so any later build of the same model and
data reuses them, whatever its --layers / --tokens. calibration.json records the sha256 of the
tensors file and a digest of its own content, so a damaged entry is never reused: a cached one is
recomputed (with a one-line note), an explicit `--calib-result` one is refused.
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

SCHEMA = 3  # 2: noise from runtime.noise (numpy), the store hashed; 3: the action head's MLP scores
MLP_CRITERION = "mean |silu(gate_j) * up_j| over calibration tokens x ||W_down[:, j]||_2"
DEFAULT_DIR = Path(".vlacompile-cache")
META, TENSORS = "calibration.json", "tensors.safetensors"


@dataclass
class Calibration:
    meta: dict  # what calibration.json holds
    mlp_scores: torch.Tensor  # [layers, intermediate]
    token_relevance: torch.Tensor  # [samples, visual tokens]
    path: Path | None = None
    head_mlp_scores: torch.Tensor | None = None  # [action-head MLPs, width]: pi0's expert; [0, 0] for CogACT

    @property
    def layer_importance(self) -> list[float]:
        return self.meta["layer_importance"]

    @property
    def model_hash(self) -> str:
        return self.meta["model_hash"]

    def ranking(self) -> list[int]:
        """Layers from least to most important."""
        return sorted(range(len(self.layer_importance)), key=self.layer_importance.__getitem__)

    def layer_search(self, pairing: str) -> dict:
        """The stored greedy layer search under `pairing` (layer_search): order, deviation, samples;
        {} before any."""
        return self.meta.get("layer_search", {}).get(pairing, {})


def run(policy, samples, select_layer: int = 2, progress: bool = True) -> Calibration:
    from tqdm import tqdm

    model = policy.model
    with Collector(model, select_layer) as col, torch.no_grad():
        for i, sample in enumerate(tqdm(samples, desc="calibrate", unit="sample", disable=not progress)):
            policy.calibration_forward(sample, policy.noise(i))  # the family's inputs, through the hooks
            col.end_sample()
    res = col.results()
    meta = {"schema": SCHEMA, "model": model.cfg.name, "model_hash": model_hash(model),
            "sampler": model.sampler_settings(),
            "data_hash": data_hash(samples), "samples": len(samples), "select_layer": select_layer,
            "layer_importance": res["layer_importance"], "mlp_criterion": MLP_CRITERION,
            "token_relevance_mean": res["token_relevance"].mean(dim=0).tolist(),
            "dit_similarity": {**res["dit_similarity"], "unit": model.pass_target().head_unit}}
    return Calibration(meta, res["mlp_scores"], res["token_relevance"], head_mlp_scores=res["head_mlp_scores"])


def search_layers(calib: Calibration, policy, samples, pairing: str, drop: int, progress: bool = True,
                  persist: bool = True) -> None:
    """Make calib's layer search under `pairing` at least `drop` layers deep (`--layer-method actions`),
    continuing a stored one; with `persist`, store it beside the rest of the calibration."""
    from . import layer_search

    found = calib.layer_search(pairing)
    if len(found.get("order", [])) >= drop:
        return
    chosen, picks = layer_search.search_samples(samples)
    order, deviation = layer_search.extend(found.get("order", []), found.get("deviation", []), policy, chosen,
                                           pairing, drop, progress)
    searches = {**calib.meta.get("layer_search", {}), pairing: {
        "order": order, "deviation": deviation, "samples": picks, "criterion": layer_search.CRITERION}}
    calib.meta = {**calib.meta, "layer_search": searches}
    if persist and calib.path is not None:
        save(calib, calib.path)


def key(policy, samples, select_layer: int) -> str:
    import hashlib

    sampler = json.dumps(policy.model.sampler_settings(), sort_keys=True)
    text = f"{model_hash(policy.model)}:{sampler}:{data_hash(samples)}:{select_layer}:{SCHEMA}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _digest(meta: dict) -> str:
    import hashlib

    body = {k: v for k, v in meta.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save(calib: Calibration, folder: Path) -> Path:
    from safetensors.torch import save_file

    from ..fsutil import sha256

    with staged_folder(folder) as tmp:
        tensors = {"mlp_scores": calib.mlp_scores, "token_relevance": calib.token_relevance,
                   "head_mlp_scores": calib.head_mlp_scores}
        save_file({k: v.contiguous() for k, v in tensors.items() if v is not None and v.numel()}, str(tmp / TENSORS))
        meta = {**calib.meta, "tensors_sha256": sha256(tmp / TENSORS)}
        meta["digest"] = _digest(meta)
        (tmp / META).write_text(json.dumps(meta, indent=1))
    calib.meta, calib.path = meta, folder
    return folder


class DamagedCalibration(UserError):
    """A stored calibration that cannot be trusted: unreadable, truncated or modified."""


def _read(folder: Path) -> Calibration:
    from safetensors.torch import load_file

    from ..fsutil import sha256

    damaged = lambda why: DamagedCalibration(f"{folder}: {why}")  # noqa: E731
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise damaged(f"no {META}; not a calibration folder (`vlacompile calibrate` writes them)") from None
    except (OSError, ValueError) as exc:
        raise damaged(f"{META} is not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise damaged(f"calibration schema {meta.get('schema') if isinstance(meta, dict) else None} is not {SCHEMA} "
                      "(written by another vlacompile)")
    if meta.get("digest") != _digest(meta):
        raise damaged(f"{META} does not match its digest (modified or damaged)")
    path = folder / TENSORS
    if not path.is_file() or sha256(path) != meta.get("tensors_sha256"):
        raise damaged(f"{TENSORS} is missing or does not match its sha256 (truncated or modified)")
    try:
        tensors = load_file(str(path))
        return Calibration(meta, tensors["mlp_scores"], tensors["token_relevance"], folder,
                           tensors.get("head_mlp_scores"))
    except Exception as exc:  # safetensors raises its own error type on a malformed file
        raise damaged(f"{TENSORS} is not readable ({str(exc).splitlines()[0]})") from None


def load(folder: Path, policy=None) -> Calibration:
    """Read stored results, every hash checked; with `policy`, refuse results for other weights."""
    folder = Path(folder)
    try:
        calib = _read(folder)
    except DamagedCalibration as exc:
        raise DamagedCalibration(f"{exc}; recompute it with `vlacompile calibrate --recalibrate`, or pass another "
                                 "--calib-result") from None
    return _for(calib, policy)


def _for(calib: Calibration, policy) -> Calibration:
    meta = calib.meta
    if policy is None:
        return calib
    if meta.get("model_hash") != model_hash(policy.model):
        raise UserError(f"{calib.path}: calibration of other weights ({meta.get('model')}, "
                        f"{meta.get('model_hash', '?')[:12]}) than {policy.source}; calibrate this model or pass its "
                        "own calibration")
    sampler = policy.model.sampler_settings()
    if meta.get("sampler", sampler) != sampler:  # older results recorded none
        raise UserError(f"{calib.path}: calibration sampled with {_settings(meta['sampler'])}, this model samples "
                        f"with {_settings(sampler)}; calibrate this model or pass its own calibration")
    # results stored before the unit was recorded: the family says it
    meta["dit_similarity"].setdefault("unit", policy.model.pass_target().head_unit)
    return calib


def _settings(sampler: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(sampler.items()))


def _note(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def load_or_run(policy, samples, out_dir: Path = DEFAULT_DIR, select_layer: int = 2, progress: bool = True,
                force: bool = False, log=_note) -> tuple[Calibration, bool]:
    """(results, reused): stored results for this model, data and settings, else a fresh run. A
    damaged stored entry is recomputed, with one line through `log`."""
    folder = Path(out_dir) / f"calib-{key(policy, samples, select_layer)}"
    if folder.exists() and not force:
        try:
            return _for(_read(folder), policy), True
        except DamagedCalibration as exc:
            log(f"note: stored calibration {exc}; recomputing it")
    calib = run(policy, samples, select_layer, progress)
    save(calib, folder)
    return calib, False
