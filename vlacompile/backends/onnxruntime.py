"""ONNX Runtime through Polygraphy's loaders: the CUDA provider where onnxruntime-gpu has it, else CPU."""

from __future__ import annotations

from pathlib import Path


def providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def runner(graph: Path, mark_all: bool = False):
    from polygraphy.backend.onnx import ModifyOutputs, OnnxFromPath
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    if mark_all:
        from polygraphy import constants
        from polygraphy.backend.onnx import BytesFromOnnx

        model = BytesFromOnnx(ModifyOutputs(OnnxFromPath(str(graph)), outputs=constants.MARK_ALL))
        return OnnxrtRunner(SessionFromOnnx(model, providers=providers()), name=f"onnxrt:{graph.name}")
    return OnnxrtRunner(SessionFromOnnx(str(graph), providers=providers()), name=f"onnxrt:{graph.name}")
