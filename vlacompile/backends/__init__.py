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


def runner(backend: str, graph: Path):
    """A Polygraphy runner for one model file (an ONNX graph, or a TensorRT engine)."""
    quiet_polygraphy()
    if backend == "onnxruntime":
        from .onnxruntime import runner as make
    elif backend == "tensorrt":
        from .tensorrt import runner as make
    else:
        raise UserError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    return make(Path(graph))


def every_tensor_runner(graph: Path):
    """ONNX Runtime over `graph` with every intermediate tensor made an output (fault localization;
    on TensorRT, Polygraphy's `--trt-outputs mark all` does the same)."""
    from .onnxruntime import runner as make

    quiet_polygraphy()
    return make(Path(graph), mark_all=True)
