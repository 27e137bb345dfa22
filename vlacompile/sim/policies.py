"""The policies `evaluate` can run, behind one call: (image, instruction, noise) -> un-normalized
[chunk, 7] actions, exactly what each would send to a robot.

- `TorchPolicy`: a CogACT policy in PyTorch, the reference or a rewritten model;
- `GraphPolicy`: exported graphs through the deployed runtime (a graphs folder or a bundle, any
  backend and precision).
"""

from __future__ import annotations

import numpy as np


class TorchPolicy:
    def __init__(self, policy, name: str = "reference (PyTorch)"):
        self.policy, self.name = policy, name
        self.noise_shape = (1, policy.cfg.dit.chunk, policy.cfg.dit.action_dim)

    def __call__(self, image, instruction: str, noise: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.policy.predict(image, instruction, noise=torch.from_numpy(noise))


class GraphPolicy:
    def __init__(self, pipeline, name: str | None = None):
        self.pipeline = pipeline
        self.name = name or f"compiled {pipeline.precision} ({pipeline.backend})"
        actions = pipeline.manifest["actions"]
        self.noise_shape = (1, actions["chunk"], actions["dims"])

    def __call__(self, image, instruction: str, noise: np.ndarray) -> np.ndarray:
        return self.pipeline.predict(image, instruction, noise=noise)
