"""Fault localization: the first tensor of a failing graph that departs from a trusted graph.

Every intermediate tensor of both graphs is marked as an output (what `polygraphy run
--onnx-outputs mark all` does) and run on one input. The trusted graph is a fresh float32 export of
the same module from the PyTorch model, whose own outputs match PyTorch: tensors are paired by name
(the exporter names them by module scope), walked in the failing graph's node order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FP16_MAX = 65504.0  # mask sentinels (finfo.min) differ by precision; beyond this both mean "masked"


@dataclass(frozen=True)
class Fault:
    tensor: str
    node: str
    op: str
    error: str  # what differs, in words
    compared: int  # tensors that matched before this one

    def __str__(self) -> str:
        return (f"first divergent tensor {self.tensor!r} (output of {self.op} node {self.node!r}): {self.error}, "
                f"after {self.compared} matching tensors")


def tensor_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max abs difference, cosine) of a against reference b, both clipped to float16's range."""
    a = np.clip(np.asarray(a, np.float64), -FP16_MAX, FP16_MAX).ravel()
    b = np.clip(np.asarray(b, np.float64), -FP16_MAX, FP16_MAX).ravel()
    if a.size == 0:
        return 0.0, 1.0
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / norms) if norms > 0 else float(np.array_equal(a, b))
    return float(np.abs(a - b).max()), cosine


def _difference(a: np.ndarray, b: np.ndarray, op: str, tol) -> str | None:
    """None when `a` matches reference `b`, else what differs."""
    if not (np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating)):
        if op == "TopK":  # the order among near-tied scores is arbitrary; the selected set is what counts
            a, b = np.sort(a, axis=-1), np.sort(b, axis=-1)
        differ = int((a != b).sum())
        return f"{differ} of {a.size} values differ" if differ else None
    max_abs, cosine = tensor_error(a, b)
    bound = tol.atol + tol.tensor_rtol * min(float(np.abs(b).max(initial=0.0)), FP16_MAX)
    if max_abs <= bound and cosine >= tol.min_cosine:
        return None
    return f"max abs {max_abs:.3g} (allowed {bound:.3g}), cosine {cosine:.6f} (allowed >= {tol.min_cosine})"


def _all_tensors(graph: Path, feed: dict) -> dict[str, np.ndarray]:
    from ..backends import every_tensor_runner

    with every_tensor_runner(graph) as r:
        return dict(r.infer(feed))


def localize(graph: Path, trusted: Path, feed: dict, tol) -> Fault | None:
    """The first tensor (in `graph`'s node order) whose values leave `tol` against `trusted`'s tensor
    of the same name and shape; None when every paired tensor matches."""
    import onnx

    got, want = _all_tensors(graph, feed), _all_tensors(trusted, feed)
    compared = 0
    for node in onnx.load(str(graph), load_external_data=False).graph.node:
        for name in node.output:
            if name not in got or name not in want or got[name].shape != want[name].shape:
                continue
            error = _difference(got[name], want[name], node.op_type, tol)
            if error is not None:
                return Fault(name, node.name, node.op_type, error, compared)
            compared += 1
    return None
