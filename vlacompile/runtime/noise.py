"""The initial DDIM noise: one generator for every seed, in PyTorch and in the deployed graphs.

`predict` (PyTorch), `run` (graphs), the Python APIs and the manifest all draw it here, so a seed
means the same actions wherever it is used. A client in another language either reimplements
numpy's generator exactly (PCG64 seeded through SeedSequence, then numpy's float32 ziggurat normal)
or supplies its own standard-normal noise: the graphs take any.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

GENERATOR = "numpy.random.default_rng(seed).standard_normal(shape, dtype=numpy.float32)"
MAX_SEED = 2**64 - 1  # what a C++ client can hold in a uint64


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed {seed!r}: give an integer from 0 to 2**64 - 1 ({MAX_SEED})")
    return int(seed)


def draw(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise of `shape` for `seed` (the manifest's "noise" "generator")."""
    return np.random.default_rng(check_seed(seed)).standard_normal(tuple(shape), dtype=np.float32)


def declaration(shape: tuple[int, ...]) -> dict:
    """The manifest's "noise" entry."""
    return {"input": "noise", "shape": list(shape), "distribution": "standard normal", "dtype": "float32",
            "generator": GENERATOR, "seeds": [0, MAX_SEED],
            "client_supplied": "allowed: any standard-normal float32 array of this shape"}


def from_declaration(decl: dict, seed: int) -> np.ndarray:
    """Noise as a manifest declares it; a generator this runtime does not know is refused."""
    if decl.get("generator") != GENERATOR or decl.get("dtype") != "float32":
        raise UserError(f"the manifest's noise generator {decl.get('generator')!r} ({decl.get('dtype')}) is not the "
                        f"one this runtime implements ({GENERATOR}); pass noise= explicitly or upgrade vlacompile")
    return draw(seed, tuple(decl["shape"]))
