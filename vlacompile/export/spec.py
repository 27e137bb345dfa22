"""How a model family declares its graphs: names, IO tensors and the module that computes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"  # numpy's name

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class GraphSpec:
    name: str
    wrapper: Callable  # model -> nn.Module whose forward takes `inputs` in order and returns the output
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def io_json(self) -> dict:
        """The manifest's description of this graph's inputs and outputs."""
        return {"inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs]}
