"""TensorRT-readiness lint for ONNX graphs; needs onnx only, so it runs where TensorRT is absent.

Checks every node against TensorRT 10's ONNX parser table (trt_ops.py, transcribed from
onnx-tensorrt's docs/operators.md) and the restrictions of that table that can be decided from the
graph; then that no tensor is float64 and that every tensor's shape is static, i.e. no output
shape depends on data; and in quantized graphs, the explicit-quantization rules of qdq.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import qdq, trt_ops

DATA_DEPENDENT_OPS = ("NonZero", "Unique", "Compress", "NonMaxSuppression")
CONSTANT_INPUTS = {  # op -> input index that the table requires to be a build-time constant
    **{op: 1 for op in trt_ops.RESTRICTIONS if op.startswith("Reduce")},
    "Squeeze": 1, "Unsqueeze": 1, "CumSum": 1, "OneHot": 1, "TopK": 1,
}
TOPK_MAX = 3840


@dataclass(frozen=True)
class Finding:
    graph: str
    node: str
    op: str
    message: str

    def __str__(self) -> str:
        return f"{self.graph}: {self.op} node {self.node!r}: {self.message}"


@dataclass
class LintReport:
    graph: str
    nodes: int
    findings: list[Finding] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.findings


def _type_names():
    from onnx import TensorProto as T

    return {T.FLOAT: "FP32", T.FLOAT16: "FP16", T.BFLOAT16: "BF16", T.INT32: "INT32", T.INT64: "INT64",
            T.INT8: "INT8", T.UINT8: "UINT8", T.BOOL: "BOOL", T.DOUBLE: "DOUBLE", T.FLOAT8E4M3FN: "FP8"}


def _tensor_types(graph) -> dict[str, object]:
    """name -> TypeProto.Tensor for every typed value (inputs, outputs, inferred intermediates)."""
    values = [*graph.input, *graph.output, *graph.value_info]
    return {v.name: v.type.tensor_type for v in values if v.type.HasField("tensor_type")}


def _constants(graph) -> dict[str, object]:
    """name -> TensorProto of every initializer and Constant output: the build-time constants."""
    out = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = node.attribute[0].t
    return out


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _node_findings(node, types, constants, consumed, names) -> list[str]:
    out = []
    if node.domain not in ("", "ai.onnx"):
        return [f"custom domain {node.domain!r}: TensorRT's parser needs a plugin for it"]
    if node.op_type in trt_ops.UNSUPPORTED or node.op_type not in trt_ops.SUPPORTED:
        return [f"not supported by TensorRT {trt_ops.TENSORRT_VERSION}'s ONNX parser"]
    allowed = trt_ops.SUPPORTED[node.op_type]
    first = node.input[0] if node.input else (node.output[0] if node.output else "")
    kind = names.get(types[first].elem_type) if first in types else None
    if kind and kind != "DOUBLE" and kind not in allowed:
        out.append(f"input type {kind} is not one TensorRT supports for it ({', '.join(allowed)})")
    index = CONSTANT_INPUTS.get(node.op_type)
    if index is not None and len(node.input) > index and node.input[index] and node.input[index] not in constants:
        out.append(f"input {index} ({node.input[index]!r}) must be a build-time constant")
    if node.op_type == "TopK":
        out += _topk(node, constants)
    if node.op_type == "LayerNormalization" and any(o and (o in consumed) for o in node.output[1:]):
        out.append("only its first output Y is supported, but Mean / InvStdDev are used")
    if node.op_type == "ScatterND" and _attr(node, "reduction", b"none") not in (b"none", "none"):
        out.append("reduction other than none is not supported")
    return out


def _topk(node, constants) -> list[str]:
    from onnx import numpy_helper

    out = [] if _attr(node, "sorted", 1) == 1 else ["sorted must be 1"]
    k = constants.get(node.input[1])
    if k is not None:
        value = int(numpy_helper.to_array(k).reshape(-1)[0])
        if value >= TOPK_MAX:
            out.append(f"K={value} must be less than {TOPK_MAX}")
    return out


def _float64(graph, types, names) -> list[Finding]:
    found = [Finding(graph.name, t.name, "initializer", "float64 tensor") for t in graph.initializer
             if names.get(t.data_type) == "DOUBLE"]
    found += [Finding(graph.name, n, "tensor", "float64 tensor") for n, t in types.items()
              if names.get(t.elem_type) == "DOUBLE"]
    return found


def _dynamic_shapes(graph, types) -> list[Finding]:
    produced = [o for node in graph.node for o in node.output if o]
    out = []
    for name in produced:
        t = types.get(name)
        static = t is not None and t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim)
        if not static:
            out.append(Finding(graph.name, name, "tensor", "shape is not static after shape inference "
                                                           "(it depends on data or on an unresolved computation)"))
    return out


def lint(path: Path, islands: dict | None = None) -> LintReport:
    """`islands`: the model family's float islands (name -> {"ops", "scope", "why"}), which no
    dequantized tensor may reach; norms and softmax are islands in any graph."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)  # shapes and types only: weights are not needed
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    graph, names = model.graph, _type_names()
    graph.name = path.name
    types, constants = _tensor_types(graph), _constants(graph)
    consumed = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}
    report = LintReport(path.name, len(graph.node))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not trt_ops.OPSET_MIN <= opset <= trt_ops.OPSET_MAX or opset < 17:
        report.findings.append(Finding(path.name, "", "model", f"opset {opset}: export at 17..{trt_ops.OPSET_MAX}"))
    for node in graph.node:
        if node.op_type in DATA_DEPENDENT_OPS:
            report.findings.append(Finding(path.name, node.name, node.op_type, "output shape depends on data"))
        for msg in _node_findings(node, types, constants, consumed, names):
            report.findings.append(Finding(path.name, node.name, node.op_type, msg))
    report.findings += _float64(graph, types, names) + _dynamic_shapes(graph, types)
    report.findings += [Finding(path.name, n, op, msg)
                        for n, op, msg in qdq.findings(graph, types, constants, names, path.parent, islands)]
    return report
