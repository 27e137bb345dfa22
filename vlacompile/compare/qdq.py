"""The TensorRT lint's rules for explicitly quantized (QDQ) graphs.

TensorRT builds an int8 / fp8 engine from QuantizeLinear / DequantizeLinear pairs only in the form
its explicit quantization supports (TensorRT developer guide, "Explicit Quantization"; onnx-tensorrt's
operator table: `x_zero_point` / `y_zero_point` must be zero):
- the quantized type is INT8 or FP8 (E4M3); UINT8 only exists as a network input or output;
- zero points are build-time constants equal to 0 (symmetric quantization);
- scales are build-time constants, finite and positive;
- a per-channel scale has an axis inside the input's rank and one value per channel there;
- activations (a QuantizeLinear whose input is computed) are quantized per tensor.
Beyond TensorRT: no island that the model family keeps in float (norms, softmax, ...) may read a
dequantized tensor, directly or through ops that only move data.
"""

from __future__ import annotations

import re
from pathlib import Path

QDQ = ("QuantizeLinear", "DequantizeLinear")
ALLOWED = ("INT8", "FP8")
PASS_THROUGH = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten", "Expand")
# Islands of any graph: the ops that must see float whatever the family. A family adds its own.
DEFAULT_ISLANDS = {"norms": {"ops": ["LayerNormalization", "RMSNormalization"]}, "softmax": {"ops": ["Softmax"]}}


def _values(tensor, folder: Path):
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor, base_dir=str(folder))  # small, but external above 1 KB in big graphs


def _attr(node, name, default):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _rank(name, types, constants):
    if name in constants:
        return len(constants[name].dims), list(constants[name].dims)
    t = types.get(name)
    if t is None or not t.HasField("shape"):
        return None, None
    return len(t.shape.dim), [d.dim_value for d in t.shape.dim]


def _node(node, types, constants, names, folder: Path) -> list[str]:
    import numpy as np

    out = []
    scale = node.input[1] if len(node.input) > 1 else ""
    zero = node.input[2] if len(node.input) > 2 else ""
    if not zero:
        out.append("no zero point: the quantized type defaults to UINT8; give an INT8 / FP8 zero point of 0")
    elif zero not in constants:
        out.append(f"zero point {zero!r} must be a build-time constant")
    else:
        kind = names.get(constants[zero].data_type, str(constants[zero].data_type))
        if kind not in ALLOWED:
            out.append(f"quantized type {kind}: TensorRT's explicit quantization takes {' or '.join(ALLOWED)}")
        if np.any(_values(constants[zero], folder).astype(np.float32) != 0):
            out.append("zero point is not 0: TensorRT supports symmetric quantization only")
    if scale not in constants:
        out.append(f"scale {scale!r} must be a build-time constant")
        return out
    s = _values(constants[scale], folder).astype(np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        out.append(f"scale {scale!r} has values that are not finite and positive (min {s.min():g})")
    if s.size > 1:
        rank, shape = _rank(node.input[0], types, constants)
        axis = _attr(node, "axis", 1)
        if rank is not None and not -rank <= axis < rank:
            out.append(f"axis {axis} is outside the input's rank {rank}")
        elif rank is not None and shape[axis] and shape[axis] != s.size:
            out.append(f"per-channel scale has {s.size} values for {shape[axis]} channels on axis {axis}")
        if node.op_type == "QuantizeLinear" and node.input[0] not in constants:
            out.append("activation quantized per channel: TensorRT quantizes activations per tensor")
    return out


def island_of(node, islands: dict) -> str | None:
    """The precision island (a name of `islands`) a node belongs to, by op type or name scope."""
    for name, island in islands.items():
        if node.op_type in island.get("ops", ()) or ("scope" in island and re.match(island["scope"], node.name)):
            return name
    return None


def _dequantized(name: str, producers: dict, seen=None) -> str | None:
    """The DequantizeLinear output that `name` is, or reaches through data-moving ops; else None."""
    node = producers.get(name)
    if node is None:
        return None
    if node.op_type == "DequantizeLinear":
        return node.name
    if node.op_type in PASS_THROUGH and node.input:
        return _dequantized(node.input[0], producers)
    return None


def findings(graph, types, constants, names, folder: Path, islands: dict | None = None) -> list[tuple]:
    """(node name, op, message) for every QDQ problem in `graph`."""
    out = []
    nodes = list(graph.node)
    if not any(n.op_type in QDQ for n in nodes):
        return out
    for node in nodes:
        if node.op_type in QDQ:
            out += [(node.name, node.op_type, m) for m in _node(node, types, constants, names, folder)]
    producers = {o: n for n in nodes for o in n.output}
    islands = {**DEFAULT_ISLANDS, **(islands or {})}
    for node in nodes:
        island = island_of(node, islands)
        if island is None or node.op_type in QDQ:
            continue
        for i in node.input:
            dq = _dequantized(i, producers) if i else None
            if dq:
                why = islands[island].get("why", "")
                out.append((node.name, node.op_type, f"reads the dequantized tensor of {dq!r}, but island "
                                                      f"{island!r} must stay float" + (f": {why}" if why else "")))
                break
    return out
