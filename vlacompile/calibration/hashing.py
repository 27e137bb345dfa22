"""Content hashes that key calibration results: the weights, and the calibration data."""

from __future__ import annotations

import hashlib

import torch


def model_hash(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().contiguous().cpu().view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_hash(samples) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(s.instruction.encode() + b"\0" + s.image_path.read_bytes())
        if s.state is not None:  # a set without states hashes as before states existed
            h.update(repr(s.state).encode())
    return h.hexdigest()
