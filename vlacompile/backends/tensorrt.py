"""TensorRT through Polygraphy's loaders: build a strongly typed engine from an ONNX graph, run it.

Kept thin on purpose: no machine this project develops on has TensorRT, so every line here runs
only on a device. What can be decided without TensorRT (which engine is valid where) lives in
`vlacompile.runtime.provenance` and is tested on CPU.
"""

from __future__ import annotations

from pathlib import Path

from ..fsutil import write_bytes


def version() -> str:
    import tensorrt

    return tensorrt.__version__


def build(graph: Path, engine: Path, workspace_mb: int | None = None, opt_level: int | None = None,
          timing_cache: Path | None = None) -> None:
    """Strongly typed: the graph's own types decide every layer's precision (fp32 / fp16 / bf16 graph)."""
    import tensorrt as trt
    from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath

    pools = {trt.MemoryPoolType.WORKSPACE: workspace_mb << 20} if workspace_mb else None
    cache = str(timing_cache) if timing_cache else None
    config = CreateConfig(memory_pool_limits=pools, builder_optimization_level=opt_level,
                          load_timing_cache=cache if timing_cache and timing_cache.exists() else None)
    network = NetworkFromOnnxPath(str(graph), strongly_typed=True)
    write_bytes(engine, bytes(EngineBytesFromNetwork(network, config=config, save_timing_cache=cache)()))


def runner(engine: Path):
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    return TrtRunner(EngineFromBytes(BytesFromPath(str(engine))), name=f"trt:{engine.name}")
