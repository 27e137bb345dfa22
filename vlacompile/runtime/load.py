"""`load(bundle)`: the policy on a device, on TensorRT where it is present, else ONNX Runtime."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import weakref
from pathlib import Path

from ..errors import UserError
from . import manifest as manifest_io
from .bundle import ARCHIVE_SUFFIXES, extract
from .pipeline import GraphPipeline, check_precision

PREFERRED = ("fp16", "bf16", "int8", "fp8", "fp32")  # on a GPU: quantized engines exist only when built on purpose
CPU_PRECISION = "fp32"  # ONNX Runtime on a CPU gains nothing from half weights
BACKENDS = ("onnxruntime", "tensorrt")


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
        found = [p for p in PREFERRED if p in built and p in manifest["graphs"]]
        if not found:
            raise UserError(f"{Path(folder) / 'engines'} holds no TensorRT engines; build them on this device: "
                            f"vlacompile engines --graphs {folder} --out {Path(folder) / 'engines'}")
        return found[0]
    return CPU_PRECISION if CPU_PRECISION in manifest["graphs"] else next(iter(manifest["graphs"]))


def _load_folder(folder: Path, precision, backend, allow_unvalidated: bool) -> GraphPipeline:
    manifest = manifest_io.read(folder)
    problem = manifest_io.validation_problem(manifest)
    if problem and not allow_unvalidated:
        raise UserError(f"{folder} {problem}; validate it (`vlacompile validate --graphs {folder}`) before "
                        "deploying, or load it anyway with allow_unvalidated=True (run: --allow-unvalidated)")
    if backend is not None and backend not in BACKENDS:
        raise UserError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if precision is not None:
        check_precision(folder, manifest, precision)
    backend = backend or pick_backend(folder, manifest)
    precision = precision or pick_precision(folder, manifest, backend)
    return GraphPipeline(folder, precision, backend, verify=True, engines=folder / "engines")


def load(bundle: str | Path, precision: str | None = None, backend: str | None = None,
         allow_unvalidated: bool = False) -> GraphPipeline:
    """A verified pipeline over a bundle: an unpacked folder (or any validated graphs folder), or its
    .tar.gz, unpacked safely to a temporary folder that closing the pipeline removes."""
    path = Path(bundle)
    if not path.exists():
        raise UserError(f"{path} does not exist; pass a bundle folder or its .tar.gz (`vlacompile package` writes both)")
    if not (path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)):
        return _load_folder(path, precision, backend, allow_unvalidated)
    scratch = Path(tempfile.mkdtemp(prefix="vlacompile-bundle."))
    try:
        pipe = _load_folder(extract(path, scratch), precision, backend, allow_unvalidated)
    except UserError as exc:  # name the archive, not a temporary folder that is about to vanish
        shutil.rmtree(scratch, ignore_errors=True)
        raise UserError(str(exc).replace(f"{scratch}/", f"{path}:")) from None
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    pipe.on_close(weakref.finalize(pipe, shutil.rmtree, scratch, True))  # also if never closed
    return pipe
