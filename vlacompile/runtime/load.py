"""`load(bundle)`: the policy on a device, on TensorRT where it is present, else ONNX Runtime."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import UserError
from . import manifest as manifest_io
from .pipeline import GraphPipeline

PREFERRED = ("fp16", "bf16", "int8", "fp8", "fp32")  # on a GPU: quantized engines exist only when built on purpose
CPU_PRECISION = "fp32"  # ONNX Runtime on a CPU gains nothing from half weights


def pick_backend(folder: Path, manifest: dict) -> str:
    engines = Path(folder) / "engines"
    if importlib.util.find_spec("tensorrt") is not None and any(engines.glob("*.engine")):
        return "tensorrt"
    if not manifest.get("bundle", {}).get("onnx", True):
        raise UserError(f"{folder} holds engines only and TensorRT is not installed here; install TensorRT or "
                        "package the bundle with its ONNX graphs")
    return "onnxruntime"


def pick_precision(folder: Path, manifest: dict, backend: str) -> str:
    if backend == "tensorrt":
        built = {p.name.split(".")[1] for p in (Path(folder) / "engines").glob("*.engine")}
        return next(p for p in PREFERRED if p in built)
    return CPU_PRECISION if CPU_PRECISION in manifest["graphs"] else next(iter(manifest["graphs"]))


def load(bundle: str | Path, precision: str | None = None, backend: str | None = None) -> GraphPipeline:
    """A verified pipeline over an unpacked bundle (or any graphs folder with its manifest)."""
    folder = Path(bundle)
    manifest = manifest_io.read(folder)
    backend = backend or pick_backend(folder, manifest)
    precision = precision or pick_precision(folder, manifest, backend)
    return GraphPipeline(folder, precision, backend, verify=True, engines=folder / "engines")
