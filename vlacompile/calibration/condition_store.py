"""The reference model's conditioning vectors on the condition map's frames, stored.

The map's fit runs the uncompressed model over its frames once per process: 37 of the 82 s the map
added to a build of cogact-tiny (1,600 frames), 49 of 85 s on a slower evening. Those vectors
depend only on the weights and the frames, not on --layers / --tokens, so they are stored in the
cache folder after the first fit and read by every later command (validate after build, bench,
eval --rewritten, the next build). The embedded default ships its own for the default 200 episodes
(SHIPPED, 0.4 MB of float64), so a fresh clone's first `make build` skips them too.

An entry is keyed by the weights (calibration.hashing.model_hash) and the frames' content
(instruction, pixels, state, split): other weights or other frames (a changed renderer) never match.
A file that does not read, does not match its sha256 or holds the wrong shapes is ignored and the
vectors recomputed; the cache is a speed-up, never an input a build depends on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import UserError

SCHEMA = "1"
# beside the embedded default's weights (models/cogact/embedded.py)
SHIPPED = Path(__file__).resolve().parents[1] / "models/cogact/assets/cogact-tiny/condition_reference.safetensors"
PARTS = ("fit", "heldout")


def key(model_digest: str, fit_set: list, heldout: list) -> str:
    """sha256 over the schema, the weights' hash and every frame of both splits, in order."""
    h = hashlib.sha256(f"{SCHEMA}:{model_digest}".encode())
    for part, samples in zip(PARTS, (fit_set, heldout)):
        h.update(f"{part}:{len(samples)}".encode())
        for s in samples:
            image = s.load_image().convert("RGB")
            h.update(s.instruction.encode() + b"\0" + repr(image.size).encode() + image.tobytes())
            h.update(repr(s.state).encode())
    return h.hexdigest()


def cache_path(cache_dir: Path, k: str) -> Path:
    return Path(cache_dir) / f"condition-{k[:16]}.safetensors"


def _tensor_sha(vectors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for part in PARTS:
        h.update(vectors[part].contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load(k: str, paths, shapes: dict[str, tuple]) -> tuple[dict[str, torch.Tensor], Path] | tuple[None, None]:
    """The first of `paths` that holds the vectors of key `k` with these shapes, and its path."""
    from safetensors import safe_open

    for path in paths:
        if not Path(path).is_file():
            continue
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("key") != k:
                    continue
                vectors = {part: f.get_tensor(part) for part in PARTS}
        except Exception:  # a damaged entry is recomputed, like any miss
            continue
        if all(tuple(vectors[p].shape) == shapes[p] and vectors[p].dtype == torch.float64 for p in PARTS) \
                and meta.get("sha256") == _tensor_sha(vectors):
            return vectors, Path(path)
    return None, None


def store(k: str, vectors: dict[str, torch.Tensor], path: Path) -> bool:
    """Write the vectors to `path` (a temporary name, then renamed); False where it cannot be written."""
    from safetensors.torch import save_file

    from ..fsutil import staged_file

    tensors = {part: vectors[part].contiguous() for part in PARTS}
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with staged_file(Path(path)) as tmp:
            save_file(tensors, str(tmp), metadata={"key": k, "sha256": _tensor_sha(tensors), "schema": SCHEMA})
    except (OSError, UserError):  # an unwritable cache costs the next command time, nothing else
        return False
    return True
