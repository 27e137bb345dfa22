"""Image + instruction -> actions, from a graphs folder and its manifest alone.

The graphs' tensor names are global (the vision graph's `visual_tokens` output is the llm graph's
`visual_tokens` input), so the pipeline runs the graphs in the manifest's order over one dict. Every
step around the graphs (image, prompt, noise, post-processing) follows the manifest's declarations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import manifest as manifest_io
from . import noise as noise_io
from . import observation, postprocess, preprocess
from .image import as_rgb
from .prompt import Prompt

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8")  # int8 / fp8: QDQ graphs quantized from fp32 (vlacompile.quant)
QUANTIZED = ("int8", "fp8")  # their graphs come with a `quantization` record (docs/CONTRACT.md)


def check_precision(folder: Path, manifest: dict, precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision not in manifest["graphs"]:
        raise UserError(f"{folder} has no {precision} graphs (it has {', '.join(manifest['graphs'])}); "
                        f"pick one of those or export with --precision {precision}")
    if precision in QUANTIZED and precision not in (manifest.get("quantization") or {}):
        raise UserError(f"{folder}: its manifest lists {precision} graphs without their quantization record "
                        f"(quantization.{precision}); export the graphs again")


def check_runnable(precision: str, backend: str) -> None:
    """ONNX Runtime's CPU provider has no bf16 or fp8 compute: those graphs run on TensorRT."""
    if backend == "onnxruntime" and precision == "bf16":
        raise UserError("ONNX Runtime's CPU provider has no bf16 kernels; run the bf16 graphs on TensorRT "
                        "(--backend tensorrt), or pick fp32 / fp16")
    if backend == "onnxruntime" and precision == "fp8":
        raise UserError("ONNX Runtime's CPU provider has no fp8 compute; run the fp8 graphs on TensorRT on an Ada, "
                        "Hopper or Thor GPU (--backend tensorrt), or pick fp32 / fp16 / int8")


def model_files(folder: Path, manifest: dict, precision: str, backend: str, engines: Path | None = None):
    """graph -> the file its runner loads: the ONNX graph, or (tensorrt) its engine, checked for this device."""
    if backend == "tensorrt":
        from . import provenance

        return provenance.engine_files(folder, manifest, precision, engines or folder / "engines", provenance.current())
    check_runnable(precision, backend)
    return {g: folder / manifest["graphs"][precision][g]["file"] for g in manifest["pipeline"]}


class GraphPipeline:
    """`backend`: onnxruntime runs the ONNX graphs; tensorrt runs engines from `engines` (default
    `<folder>/engines`), refused unless built by this TensorRT version on this GPU architecture."""

    def __init__(self, folder: str | Path, precision: str = "fp32", backend: str = "onnxruntime", verify: bool = True,
                 engines: str | Path | None = None):
        from ..backends import runner

        folder = Path(folder)
        m = manifest_io.read(folder)
        check_precision(folder, m, precision)
        if verify:
            manifest_io.verify(folder, m)
        statistics = json.loads((folder / m["statistics"]["file"]).read_text())
        postprocess.check_statistics(statistics, m["actions"]["dims"], folder / m["statistics"]["file"],
                                     m["postprocess"].get("unnormalize", postprocess.UNNORMALIZE))
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
        preprocess.check(manifest["preprocess"])  # refuse what this runtime would not follow, before any run
        postprocess.check(manifest["postprocess"])
        if "state" in manifest:
            observation.check(manifest, statistics, folder / manifest["postprocess"]["statistics"])
        self.prompt = Prompt.from_declaration(folder, manifest["prompt"])
        self._closers, self.runners = [], {}
        for name, r in runners.items():
            r.activate()
            self.runners[name] = r

    def on_close(self, fn) -> None:
        """Call `fn()` when the pipeline closes (e.g. remove the folder an archive was unpacked to)."""
        self._closers.append(fn)

    def close(self) -> None:
        for r in self.runners.values():
            if r.is_active:
                r.deactivate()
        while self._closers:
            self._closers.pop()()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def noise(self, seed: int) -> np.ndarray:
        """Initial DDIM noise as the manifest declares it (the PyTorch policy draws the same)."""
        return noise_io.from_declaration(self.manifest["noise"], seed)

    def _noise_input(self, noise) -> np.ndarray:
        shape = tuple(self.manifest["noise"]["shape"])
        array = np.asarray(noise, dtype=np.float32)
        if array.size != int(np.prod(shape)):
            raise UserError(f"noise has shape {array.shape}; the graphs take {list(shape)} (standard normal, float32)")
        return array.reshape(shape)

    def inputs(self, image, instruction: str, noise: np.ndarray, state=None) -> dict[str, np.ndarray]:
        """The first graphs' inputs. `image`: one image, or (pi0) a list with one per camera slot;
        `state`: the robot state, for graphs that read it (the manifest's "state")."""
        m = self.manifest
        if "cameras" not in m:
            ids, index = self.prompt.padded(instruction)  # refuses a bad instruction before the image is touched
            return {"pixels": preprocess.preprocess(as_rgb(image), m["preprocess"]),
                    "input_ids": np.asarray([ids], dtype=np.int64),
                    "cognition_index": np.asarray([index], dtype=np.int64), "noise": self._noise_input(noise)}
        ids, valid = self.prompt.masked(instruction)
        stats = self.statistics[postprocess.statistics_key(self.statistics)]
        return {**observation.state(state, m["state"], stats), **observation.cameras(image, m["cameras"], m["preprocess"]),
                "input_ids": np.asarray([ids], dtype=np.int64), m["prompt"]["valid"]: np.asarray([valid]),
                "noise": self._noise_input(noise)}

    def run(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every graph in order; each reads its inputs from, and adds its outputs to, `tensors`."""
        tensors = dict(tensors)
        for name, r in self.runners.items():
            feed = {t["name"]: tensors[t["name"]] for t in self.graphs[name]["inputs"]}
            tensors.update(r.infer(feed))
        return tensors

    def predict_normalized(self, image, instruction: str, noise: np.ndarray | None = None, seed: int = 0,
                           state=None):
        noise = self.noise(seed) if noise is None else noise
        return self.run(self.inputs(image, instruction, noise, state))["actions"][0]  # [16, 7]; pi0 [50, 32]

    def predict(self, image, instruction: str, seed: int = 0, noise=None, unnorm_key: str | None = None,
                state=None) -> np.ndarray:
        """Un-normalized action chunk ([16, 7] for CogACT, [50, action dims] for pi0), as the PyTorch
        policy's `predict` gives it for the same seed (or noise)."""
        stats = self.statistics[postprocess.statistics_key(self.statistics, unnorm_key)]
        return postprocess.unnormalize(self.predict_normalized(image, instruction, noise, seed, state), stats,
                                       self.manifest["postprocess"])
