"""One module -> one static ONNX graph: trace, fold constants, save (external data above 2 GB).

Exporter choice, measured on the embedded default (2-core CPU, docs/BENCHMARKS.md): all six graphs
take 8.8 s with the TorchScript exporter and 88 s with the dynamo exporter (most of it in its
translation and optimization passes), so TorchScript is the default and dynamo stays selectable.
TorchScript leaves shape arithmetic (Shape -> Gather -> Concat -> Expand) in the graph; Polygraphy's
constant folding (what `polygraphy surgeon sanitize --fold-constants` runs) turns it into static
shapes, which the TensorRT lint then checks.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

from .spec import GraphSpec

EXPORTERS = ("torchscript", "dynamo")
OPSET = 18  # >= 17 maps LayerNormalization to TensorRT's normalization layer
EXTERNAL_DATA_BYTES = 2 * 1024**3  # protobuf's limit for one file


@contextlib.contextmanager
def _quiet():
    """The exporters print deprecation notes and per-pass banners that say nothing to a user."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)


def _trace(module, args, spec: GraphSpec, path: Path, exporter: str, opset: int) -> None:
    import torch

    names = {"input_names": [t.name for t in spec.inputs], "output_names": [t.name for t in spec.outputs]}
    with _quiet(), torch.no_grad():
        if exporter == "torchscript":
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                              do_constant_folding=True, **names)
        else:
            program = torch.onnx.export(module, args, dynamo=True, opset_version=opset, **names)
            program.save(str(path), external_data=True)


def _fold(path: Path):
    import onnx
    from polygraphy.backend.onnx import fold_constants

    from ..backends import quiet_polygraphy

    quiet_polygraphy()
    return fold_constants(onnx.load(str(path)), num_passes=None, fold_shapes=True, error_ok=False)


def dedup_initializers(model):
    """Let nodes share one copy of equal constants. Folding gives every call site of a weight its own
    folded copy (`weight.T` per MatMul): the DiT's blocks run at 2 of the 10 unrolled steps, so half
    of its graph was a second copy of its weights (3.2 MB of 6.5 MB on cogact-tiny)."""
    import hashlib

    from onnx import numpy_helper

    graph, first, rename = model.graph, {}, {}
    named = {v.name for v in [*graph.input, *graph.output]}  # a graph's interface keeps its names
    named |= {i for n in graph.node for a in n.attribute if a.g.node for sub in a.g.node for i in sub.input}
    for t in graph.initializer:
        digest = hashlib.sha1(t.raw_data or numpy_helper.to_array(t).tobytes()).hexdigest()  # raw: no copy
        key = (t.data_type, tuple(t.dims), digest)
        rename[t.name] = t.name if t.name in named else first.setdefault(key, t.name)
    for node in graph.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
    kept = [t for t in graph.initializer if rename[t.name] == t.name]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def fp16_to_bf16(model):
    """The same graph with every float16 tensor, constant and cast made bfloat16.

    A bf16 graph is traced at fp16 and converted: constant folding evaluates subgraphs with ONNX
    Runtime, which has no bf16 CPU kernels, so folding a bf16 trace fails. Both formats are 16-bit
    types that this graph uses in the same places (fp32 islands stay fp32), so the swap is exact.
    """
    import ml_dtypes
    from onnx import TensorProto, numpy_helper

    def convert(t):
        if t.data_type == TensorProto.FLOAT16:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(ml_dtypes.bfloat16), t.name))

    graph = model.graph
    for t in graph.initializer:
        convert(t)
    for node in graph.node:
        for a in node.attribute:
            if a.name == "to" and node.op_type == "Cast" and a.i == TensorProto.FLOAT16:
                a.i = TensorProto.BFLOAT16
            if a.type == a.TENSOR:
                convert(a.t)
    for v in [*graph.input, *graph.output, *graph.value_info]:
        if v.type.tensor_type.elem_type == TensorProto.FLOAT16:
            v.type.tensor_type.elem_type = TensorProto.BFLOAT16
    return model


def export_graph(module, args: tuple, spec: GraphSpec, path: Path, exporter: str = "torchscript",
                 opset: int = OPSET, bf16: bool = False) -> Path:
    """Write `path` (and `path`.data when the weights pass 2 GB). `path`'s folder must be a staging
    folder: the caller renames it into place only when every graph is done. `bf16`: `module` is the
    fp16 form and the graph is converted after folding (see fp16_to_bf16)."""
    import onnx

    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".trace.") as scratch:
        traced = Path(scratch) / path.name
        _trace(module.eval(), args, spec, traced, exporter, opset)
        model = dedup_initializers(_fold(traced))
    if bf16:
        model = fp16_to_bf16(model)
    weights = sum(t.ByteSize() for t in model.graph.initializer)
    external = weights >= EXTERNAL_DATA_BYTES
    onnx.save(model, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
              location=f"{path.name}.data" if external else None)
    return path
