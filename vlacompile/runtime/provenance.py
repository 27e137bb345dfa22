"""Where an engine is valid: the TensorRT version and GPU it was built on, recorded beside it.

A TensorRT engine only runs on the TensorRT version and GPU architecture (compute capability) that
built it. `<graph>.<precision>.json` beside each engine records both, with the sha256 of the
engine and of the ONNX graph it came from; `check` refuses a mismatch with the command that
rebuilds the engines on this device.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

from ..errors import UserError
from ..fsutil import sha256

CU_ATTR_CC_MAJOR, CU_ATTR_CC_MINOR = 75, 76  # CUdevice_attribute values of the CUDA driver API


def gpu() -> dict | None:
    """{"name", "compute_capability"} of GPU 0 from the CUDA driver (libcuda), or None without one."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    device, major, minor, name = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.create_string_buffer(256)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGet(ctypes.byref(device), 0) != 0:
        return None
    cuda.cuDeviceGetName(name, 256, device)
    cuda.cuDeviceGetAttribute(ctypes.byref(major), CU_ATTR_CC_MAJOR, device)
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), CU_ATTR_CC_MINOR, device)
    return {"name": name.value.decode(), "compute_capability": f"{major.value}.{minor.value}"}


def record(engine: Path, graph: Path, precision: str, tensorrt: str, device: dict, options: dict) -> dict:
    return {"engine": engine.name, "engine_sha256": sha256(engine), "graph": graph.name,
            "graph_sha256": sha256(graph), "precision": precision, "tensorrt": tensorrt,
            "gpu": device["name"], "compute_capability": device["compute_capability"], "options": options}


def read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: no readable engine record ({exc}); rebuild the engines with `vlacompile engines`") from None


def check(recorded: dict, current: dict, graph_sha256: str, rebuild: str) -> None:
    """Refuse an engine built elsewhere or from another graph. `current`: {"tensorrt", "compute_capability",
    "gpu"} of this device; `rebuild`: the command that rebuilds the engines here."""
    name = recorded.get("engine", "engine")
    if recorded.get("graph_sha256") != graph_sha256:
        raise UserError(f"{name} was built from another {recorded.get('graph')} than the one in this folder; "
                        f"rebuild it: {rebuild}")
    for key, what in (("tensorrt", "TensorRT"), ("compute_capability", "compute capability")):
        if str(recorded.get(key)) != str(current[key]):
            raise UserError(f"{name} was built with {what} {recorded.get(key)} ({recorded.get('gpu')}), this device has "
                            f"{current[key]} ({current.get('gpu')}); engines do not move between TensorRT versions or "
                            f"GPU architectures: rebuild them here with `{rebuild}`")


def current() -> dict:
    """This device's TensorRT version and GPU; a one-line error where either is missing."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        raise UserError("TensorRT is not installed here; on the device install it (pip install 'vlacompile[trt]', "
                        "or JetPack's TensorRT on a Jetson) and build engines there")
    device = gpu()
    if device is None:
        raise UserError("no CUDA GPU found (libcuda.so.1 did not load or has no device); build engines on the "
                        "target device")
    from ..backends.tensorrt import version

    return {"tensorrt": version(), "gpu": device["name"], "compute_capability": device["compute_capability"]}


def engine_name(graph: str, precision: str) -> str:
    return f"{graph}.{precision}.engine"


def engine_files(folder: Path, manifest: dict, precision: str, engines: Path, device: dict) -> dict[str, Path]:
    """graph -> engine path, every engine checked: its own hash, its source graph's, and this device."""
    rebuild = f"vlacompile engines --graphs {folder} --precision {precision} --out {engines}"
    out = {}
    for graph in manifest["pipeline"]:
        path = Path(engines) / engine_name(graph, precision)
        if not path.is_file():
            raise UserError(f"{path} does not exist; build the engines on this device: {rebuild}")
        recorded = read(path.with_suffix(".json"))
        if sha256(path) != recorded.get("engine_sha256"):
            raise UserError(f"{path} does not match the sha256 in its record (truncated or modified); rebuild: {rebuild}")
        source = manifest["graphs"][precision][graph]["file"]
        check(recorded, device, manifest.get("sources", {}).get(source) or manifest["files"][source], rebuild)
        out[graph] = path
    return out
