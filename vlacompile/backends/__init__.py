"""Inference backends behind one runner interface: Polygraphy's (activate / infer / deactivate).

Each backend module imports its runtime lazily, so a machine without it can still import this
package and everything that does not run that backend.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

BACKENDS = ("onnxruntime", "tensorrt")


def quiet_polygraphy() -> None:
    """Polygraphy logs every load and comparison; our commands print their own progress and tables."""
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.CRITICAL


def runner(backend: str, graph: Path, mark_all: bool = False):
    """A Polygraphy runner for one model file (an ONNX graph, or a TensorRT engine); `mark_all`
    makes every intermediate tensor an output (ONNX only)."""
    quiet_polygraphy()
    if backend == "onnxruntime":
        from .onnxruntime import runner as make
    elif backend == "tensorrt":
        from .tensorrt import runner as make
    else:
        raise UserError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    return make(Path(graph), mark_all)
