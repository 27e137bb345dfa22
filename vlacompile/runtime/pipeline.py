"""Image + instruction -> actions, from a graphs folder and its manifest alone.

The graphs' tensor names are global (the vision graph's `visual_tokens` output is the llm graph's
`visual_tokens` input), so the pipeline runs the graphs in the manifest's order over one dict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import manifest as manifest_io
from .postprocess import check_statistics, statistics_key, unnormalize
from .preprocess import preprocess
from .prompt import Prompt


def model_files(folder: Path, manifest: dict, precision: str, backend: str, engines: Path | None = None):
    """graph -> the file its runner loads: the ONNX graph, or (tensorrt) its engine, checked for this device."""
    if backend == "tensorrt":
        from . import provenance

        return provenance.engine_files(folder, manifest, precision, engines or folder / "engines", provenance.current())
    if backend == "onnxruntime" and precision == "bf16":
        raise UserError("ONNX Runtime's CPU provider has no bf16 kernels; run the bf16 graphs on TensorRT "
                        "(--backend tensorrt), or pick fp32 / fp16")
    return {g: folder / manifest["graphs"][precision][g]["file"] for g in manifest["pipeline"]}


class GraphPipeline:
    """`backend`: onnxruntime runs the ONNX graphs; tensorrt runs engines from `engines` (default
    `<folder>/engines`), refused unless built by this TensorRT version on this GPU architecture."""

    def __init__(self, folder: str | Path, precision: str = "fp32", backend: str = "onnxruntime", verify: bool = True,
                 engines: str | Path | None = None):
        from ..backends import runner

        folder = Path(folder)
        m = manifest_io.read(folder)
        if precision not in m["graphs"]:
            raise UserError(f"{folder} has no {precision} graphs (it has {', '.join(m['graphs'])}); "
                            f"pick one of those or export with --precision {precision}")
        if verify:
            manifest_io.verify(folder, m)
        statistics = json.loads((folder / m["statistics"]["file"]).read_text())
        check_statistics(statistics, m["actions"]["dims"], folder / m["statistics"]["file"])
        files = model_files(folder, m, precision, backend, Path(engines) if engines else None)
        self._setup(folder, m, precision, backend, {name: runner(backend, path) for name, path in files.items()},
                    statistics)

    @classmethod
    def from_runners(cls, folder: Path, manifest: dict, precision: str, backend: str, runners: dict, statistics: dict):
        """A pipeline over runners made elsewhere (the torch backend), with an in-memory manifest."""
        pipe = cls.__new__(cls)
        pipe._setup(Path(folder), manifest, precision, backend, runners, statistics)
        return pipe

    def _setup(self, folder: Path, manifest: dict, precision: str, backend: str, runners: dict, statistics: dict):
        self.folder, self.manifest, self.statistics = folder, manifest, statistics
        self.precision, self.backend, self.graphs = precision, backend, manifest["graphs"][precision]
        self.prompt = Prompt.from_declaration(folder, manifest["prompt"])
        self.runners = runners
        for r in self.runners.values():
            r.activate()

    def close(self) -> None:
        for r in self.runners.values():
            if r.is_active:
                r.deactivate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def noise(self, seed: int) -> np.ndarray:
        """Initial DDIM noise from numpy's generator (the PyTorch policy's seeds use torch's)."""
        shape = (1, self.manifest["actions"]["chunk"], self.manifest["actions"]["dims"])
        return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)

    def inputs(self, image, instruction: str, noise: np.ndarray) -> dict[str, np.ndarray]:
        pre = self.manifest["preprocess"]
        ids, index = self.prompt.padded(instruction)
        return {"pixels": preprocess(image, pre["size"], pre["normalizations"]),
                "input_ids": np.asarray([ids], dtype=np.int64), "cognition_index": np.asarray([index], dtype=np.int64),
                "noise": np.asarray(noise, dtype=np.float32).reshape(self.noise(0).shape)}

    def run(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every graph in order; each reads its inputs from, and adds its outputs to, `tensors`."""
        tensors = dict(tensors)
        for name, r in self.runners.items():
            feed = {t["name"]: tensors[t["name"]] for t in self.graphs[name]["inputs"]}
            tensors.update(r.infer(feed))
        return tensors

    def predict_normalized(self, image, instruction: str, noise: np.ndarray | None = None, seed: int = 0):
        noise = self.noise(seed) if noise is None else noise
        return self.run(self.inputs(image, instruction, noise))["actions"][0]  # [16, 7]

    def predict(self, image, instruction: str, seed: int = 0, noise=None, unnorm_key: str | None = None) -> np.ndarray:
        """Un-normalized action chunk [16, 7], as the PyTorch policy's `predict` gives it."""
        stats = self.statistics[statistics_key(self.statistics, unnorm_key)]
        return unnormalize(self.predict_normalized(image, instruction, noise, seed), stats)
