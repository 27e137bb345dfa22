"""The graphs quantized and run in pipeline order, each calibrated on its real inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from . import ort
from .feeds import graph_feeds, run_graph, session


def run_chain(files: dict[str, Path], precisions: dict[str, str], tensors: list[dict]) -> list[dict]:
    """Every graph in order (dict order) over each sample's tensors; precisions: graph -> its precision."""
    for graph, path in files.items():
        tensors = run_graph(session(path, precisions[graph]), tensors)
    return tensors


def quantize_chain(sources: dict[str, Path], out: dict[str, Path], nodes: dict[str, list[str]], calib: list[dict],
                   precision: str, method: str, scratch: Path) -> None:
    """Quantize every graph in order; the calibration of each runs on the outputs of the quantized
    graphs before it. Ranges are cached per graph and upstream state, so recipes that share them
    (every one-group variant, whose upstream graphs stay fp32) calibrate once."""
    tensors, upstream = calib, []
    for graph, src in sources.items():
        state = "+".join(upstream) or "fp32"
        key = hashlib.sha1(state.encode()).hexdigest()[:12]
        cache = Path(scratch) / f"{graph}.{precision}.{method}.{key}.ranges.json"
        ort.quantize(src, out[graph], nodes[graph], graph_feeds(src, tensors), precision, method, cache)
        if nodes[graph]:
            upstream.append(f"{graph}:{','.join(sorted(nodes[graph]))}")
        if graph != list(sources)[-1]:
            tensors = run_graph(session(out[graph], precision if nodes[graph] else "fp32"), tensors)


def cosines(got: list[dict], want: list[dict], name: str = "actions") -> np.ndarray:
    """Per-sample cosine of one output, flattened."""
    out = []
    for g, w in zip(got, want):
        a, b = g[name].ravel().astype(np.float64), w[name].ravel().astype(np.float64)
        out.append(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30)))
    return np.asarray(out)
