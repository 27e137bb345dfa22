"""The policies `evaluate` can run, behind one call: (image, instruction, noise, state) -> un-normalized
[chunk, 7] actions, exactly what each would send to a robot. `state` is the gripper's proprioception
(world.Gripper.state); pi0 reads it, CogACT does not.

- `TorchPolicy`: a CogACT or pi0 policy in PyTorch, the reference or a rewritten model (on the CPU
  its episodes may run in worker processes: sim/eval_workers.py);
- `GraphPolicy`: exported graphs through the deployed runtime (a graphs folder or a bundle, any
  backend and precision).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np


class TorchPolicy:
    def __init__(self, policy, name: str = "reference (PyTorch)"):
        from ..models import family

        self.policy, self.name, self.pi0 = policy, name, family(policy) == "pi0"
        cfg = policy.cfg
        self.noise_shape = (1, cfg.horizon, cfg.max_action_dim) if self.pi0 else (1, cfg.dit.chunk, cfg.dit.action_dim)

    @property
    def graph_bytes(self) -> int:  # what a worker process may come to hold (eval_workers.affordable)
        return sum(t.numel() * t.element_size() for t in [*self.policy.model.parameters(), *self.policy.model.buffers()])

    @property
    def rebuild(self):
        """How a forked worker gets this policy (sim/eval_workers.py): inherited, never pickled or
        reloaded. None for a model on a GPU, whose context does not survive a fork."""
        return self._inherited if next(self.policy.model.parameters()).device.type == "cpu" else None

    def _inherited(self) -> "TorchPolicy":
        return self

    def __call__(self, image, instruction: str, noise: np.ndarray, state=None) -> np.ndarray:
        import torch

        with torch.no_grad():
            if self.pi0:
                return self.policy.predict([image], instruction, state, noise=torch.from_numpy(noise))
            return self.policy.predict(image, instruction, noise=torch.from_numpy(noise))


class GraphPolicy:
    rebuild = None  # set by open_graphs: how a worker process opens the same policy (sim/eval_workers.py)
    graph_bytes = 0  # what its graph files weigh on disk (a worker holds its own copy)

    def __init__(self, pipeline, name: str | None = None):
        self.pipeline = pipeline
        self.name = name or f"compiled {pipeline.precision} ({pipeline.backend})"
        self.noise_shape = tuple(pipeline.manifest["noise"]["shape"])
        self.reads_state = "state" in pipeline.manifest

    def __call__(self, image, instruction: str, noise: np.ndarray, state=None) -> np.ndarray:
        return self.pipeline.predict(image, instruction, noise=noise, state=state if self.reads_state else None)


def open_graphs(folder, precision: str, backend: str, engines=None, verify: bool = True) -> GraphPolicy:
    """A graphs folder at one precision through the deployed runtime. fp32 graphs on ONNX Runtime can be
    reopened in worker processes: their outputs do not depend on the thread count (sim/eval_workers.py).
    fp16 ones do, and TensorRT's engines stay with the one process that holds the device. `verify`:
    check the files against the manifest's hashes (a worker skips it: this process just did)."""
    from ..runtime import GraphPipeline

    policy = GraphPolicy(GraphPipeline(folder, precision, backend, verify=verify, engines=engines))
    if backend == "onnxruntime" and precision == "fp32":
        policy.rebuild = partial(open_graphs, folder, precision, backend, engines, verify=False)
        policy.graph_bytes = sum(f.stat().st_size for f in Path(folder).glob(f"*.{precision}.onnx*"))
    return policy
