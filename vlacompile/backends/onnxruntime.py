"""ONNX Runtime behind Polygraphy's runner: the CUDA provider where onnxruntime-gpu has it, else CPU."""

from __future__ import annotations

from pathlib import Path

# Intra-op threads of every session this process opens; 0: ONNX Runtime's default (one per core).
# `eval`'s worker processes run one episode stream each and set 1 (sim/eval_workers.py).
THREADS = 0


def providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def session(model):
    """`model`: a path or serialized bytes.

    The pipeline runs three sessions one after another. With ONNX Runtime's default, the threads of
    a session that just finished keep spinning and take the cores from the next one: measured on
    the embedded default (2-core CPU), the three graphs took 46 ms in sequence against 24 ms
    without spinning, the same as the sum of their separate times.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = THREADS
    return onnxruntime.InferenceSession(model, options, providers=providers())


def runner(graph: Path, mark_all: bool = False):
    from polygraphy.backend.onnxrt import OnnxrtRunner

    if mark_all:
        from polygraphy import constants
        from polygraphy.backend.onnx import BytesFromOnnx, ModifyOutputs, OnnxFromPath

        model = BytesFromOnnx(ModifyOutputs(OnnxFromPath(str(graph)), outputs=constants.MARK_ALL))
        return OnnxrtRunner(lambda: session(model()), name=f"onnxrt:{graph.name}")
    return OnnxrtRunner(lambda: session(str(graph)), name=f"onnxrt:{graph.name}")
