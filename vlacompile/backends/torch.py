"""PyTorch as a deployment backend: the rewritten model's graphs as static-shape modules on CUDA in
bf16, compiled (torch.compile with CUDA graphs), behind the same Polygraphy runner interface.

Polygraphy's own PytRunner always moves inputs to CUDA and expects a tuple of outputs; this runner
runs on any device, so the CPU tests exercise the same code path as the GPU.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
from polygraphy.backend.base import BaseRunner


class TorchRunner(BaseRunner):
    def __init__(self, module, inputs: list, output_names: list[str], device: str, name: str):
        """inputs: the graph's TensorSpecs (name, shape, dtype), in argument order."""
        super().__init__(name=name, prefix="torch-runner")
        self.module, self.inputs, self.output_names, self.device = module, inputs, output_names, device
        self.input_names = [t.name for t in inputs]

    def activate_impl(self):
        pass

    def get_input_metadata_impl(self):
        from polygraphy.common import TensorMetadata

        meta = TensorMetadata()
        for t in self.inputs:
            meta.add(t.name, np.dtype(t.dtype), t.shape)
        return meta

    def infer_impl(self, feed_dict):
        import torch

        with torch.no_grad():
            args = [torch.from_numpy(np.ascontiguousarray(feed_dict[n])).to(self.device) for n in self.input_names]
            out = self.module(*args)
        outs = out if isinstance(out, tuple) else (out,)  # pi0's prefix graph returns its whole K/V cache
        return OrderedDict((name, o.cpu().numpy() if o.dtype in (torch.bool, torch.int64) else o.float().cpu().numpy())
                           for name, o in zip(self.output_names, outs, strict=True))

    def deactivate_impl(self):
        pass


def runners(policy, compressed, device: str = "cuda", precision: str = "bf16", compile: bool = True) -> dict:
    """graph -> TorchRunner over the family's graph modules. `precision`: "bf16" / "fp16" keep norms,
    softmax and DDIM in fp32 as the exported graphs do; "fp32" runs the rewritten model as is."""
    import torch

    from ..models import export_declaration

    family = export_declaration(policy)
    model = family.for_export(compressed, precision) if precision != "fp32" else copy.deepcopy(compressed)
    model = model.to(device).eval()
    out = {}
    for spec in family.graphs(compressed):
        module = spec.wrapper(model).eval()
        if compile:  # static shapes, one graph per module; CUDA graphs remove per-kernel launch cost
            module = torch.compile(module, mode="reduce-overhead" if device.startswith("cuda") else "default",
                                   fullgraph=False, dynamic=False)
        out[spec.name] = TorchRunner(module, list(spec.inputs), [t.name for t in spec.outputs], device,
                                     f"torch:{spec.name}")
    return out


def pipeline(policy, compressed, device: str = "cuda", precision: str = "bf16", compile: bool = True):
    """The runtime's GraphPipeline over TorchRunners: same preprocessing, prompt padding and
    post-processing as the exported graphs, with the model in PyTorch."""
    from ..models import export_declaration
    from ..runtime import GraphPipeline

    family = export_declaration(policy)
    decl = family.declarations(policy)
    io = {s.name: s.io_json() for s in family.graphs(compressed)}
    manifest = {**decl, "graphs": {precision: io}, "prompt": {**decl["prompt"], "tokenizer": str(policy.tokenizer.path)}}
    return GraphPipeline.from_runners(policy.tokenizer.path.parent, manifest, precision, "torch",
                                      runners(policy, compressed, device, precision, compile),
                                      family.statistics_json(policy))
