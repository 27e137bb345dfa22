"""Which GEMM nodes of an fp32 graph a recipe quantizes, and why every other one stays float.

A node is tied to its PyTorch module by its constant weight, not by its name: the exporter keeps a
Linear's weight as a (folded, transposed) initializer under an anonymous name, and names nodes by
the module whose forward ran, which for the cached DiT is the block's branch, not the block. The
bytes of `weight.T` (MatMul), `weight` (Gemm with transB, Conv) are the same in both, so a hash of
them names the module exactly. A node whose name lies in an island stays float even when its
weight is a grouped module's: the token-selection scoring reuses layer K-1's q / k weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..compare.qdq import island_of  # the lint and the quantizer agree on what an island is

GEMMS = ("MatMul", "Gemm", "Conv")


@dataclass
class Plan:
    """One graph: the nodes to quantize, by group, and the float ones with the reason."""

    graph: str
    quantize: dict[str, str] = field(default_factory=dict)  # node -> module path
    groups: dict[str, str] = field(default_factory=dict)  # node -> group
    floats: dict[str, str] = field(default_factory=dict)  # node -> why it stays float

    def nodes(self, groups, keep_float=()) -> list[str]:
        """The nodes of `groups`, less those whose module a recipe keeps float (see kept)."""
        return [n for n in self.quantize if self.groups[n] in set(groups) and not kept(self.quantize[n], keep_float)]

    def summary(self, groups, keep_float=()) -> dict:
        chosen = self.nodes(groups, keep_float)
        reasons: dict[str, int] = {}
        for n, why in self.floats.items():
            reasons[why] = reasons.get(why, 0) + 1
        for n in self.quantize:
            if n not in chosen:
                key = ("kept float by the recipe" if kept(self.quantize[n], keep_float) else
                       f"group {self.groups[n]} not in the recipe")
                reasons[key] = reasons.get(key, 0) + 1
        return {"quantized": len(chosen), "float": reasons}


def module_island(paths, islands: dict) -> str | None:
    """The island that names one of these modules (or a module above it) in its "modules": islands
    known only once the model is rewritten, such as the layers before the token selection."""
    return next((name for name, island in islands.items()
                 if any(kept(p, island.get("modules", ())) for p in paths)), None)


def kept(path: str, keep_float) -> bool:
    """A recipe's keep_float entry names a module or any module inside it."""
    return any(path == k or path.startswith(k + ".") for k in keep_float)


def _digest(array) -> str:
    import numpy as np

    a = np.ascontiguousarray(array, dtype=np.float32)
    return hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest()


def module_index(model) -> dict[str, list[str]]:
    """Weight digest -> module paths, in every form a GEMM node can hold that weight."""
    from torch import nn

    index: dict[str, list[str]] = {}
    for path, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            w = module.weight.detach().float().numpy()
            forms = [w.T, w] if isinstance(module, nn.Linear) else [w]
            for form in forms:
                index.setdefault(_digest(form), []).append(path)
    return index


def plan(graph_name: str, model_proto, model, group_of, islands: dict, keep_float=(), folder=None) -> Plan:
    """`group_of`: module path -> group or None (the family's); `keep_float`: module paths or
    prefixes of them that a recipe keeps float inside quantized groups. `folder`: where the graph's
    external data lives (it is loaded without, and each weight read from it only to be hashed)."""
    from onnx import numpy_helper

    constants = {t.name: t for t in model_proto.graph.initializer}
    index = module_index(model)
    out = Plan(graph_name)
    for node in model_proto.graph.node:
        if node.op_type not in GEMMS or len(node.input) < 2 or node.input[1] not in constants:
            continue  # activation x activation products (attention scores) stay float
        weight = numpy_helper.to_array(constants[node.input[1]], base_dir=str(folder or ""))
        paths = index.get(_digest(weight), [])
        island = island_of(node, islands) or module_island(paths, islands)
        if island is not None:
            out.floats[node.name] = f"island {island}"
        elif not paths:
            out.floats[node.name] = "weight of no module"
        elif any(kept(p, keep_float) for p in paths):
            out.floats[node.name] = "kept float by the recipe"
        elif group_of(paths[0]) is None:
            out.floats[node.name] = "in no group"
        else:
            out.quantize[node.name], out.groups[node.name] = paths[0], group_of(paths[0])
    return out
