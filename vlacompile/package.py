"""`vlacompile package`: the graphs folder (and engines, if any) as one bundle for an edge device.

The bundle is a folder and a `.tar.gz` of it. Its manifest lists the sha256 of every file in it,
and keeps the hash of every source graph under "sources", so engines built on the device from a
bundle without ONNX can still be matched to the graphs they came from.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from .errors import UserError
from .fsutil import staged_file, staged_folder
from .runtime import manifest as manifest_io
from .runtime import provenance


def _engine_files(engines: Path, manifest: dict) -> list[Path]:
    found = []
    for precision in manifest["graphs"]:
        paths = [engines / provenance.engine_name(g, precision) for g in manifest["pipeline"]]
        if any(p.is_file() for p in paths):
            missing = [p.name for p in paths if not p.is_file() or not p.with_suffix(".json").is_file()]
            if missing:
                raise UserError(f"{engines} has only some {precision} engines (missing {', '.join(missing)}); "
                                "build them all with `vlacompile engines`")
            found += [f for p in paths for f in (p, p.with_suffix(".json"))]
    if not found:
        raise UserError(f"{engines} holds no engines for these graphs; build them with `vlacompile engines`")
    return found


def package(graphs: Path, out: Path, engines: Path | None = None, onnx: bool = True) -> tuple[Path, Path]:
    """-> (bundle folder, bundle archive `<out>.tar.gz`)."""
    graphs, out = Path(graphs), Path(out)
    manifest = manifest_io.read(graphs)
    manifest_io.verify(graphs, manifest)
    if not onnx and engines is None:
        raise UserError("--no-onnx leaves nothing to run: pass --engines too")
    graph_files = {d["file"] for decls in manifest["graphs"].values() for d in decls.values()}
    keep = [n for n in manifest["files"] if onnx or (n not in graph_files and not n.endswith(".onnx.data"))]
    bundled = {**manifest, "files": {}, "sources": {n: manifest["files"][n] for n in sorted(graph_files)},
               "bundle": {"onnx": onnx, "engines": engines is not None}}
    with staged_folder(out) as tmp:
        for name in keep:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(graphs / name, tmp / name)
        if engines is not None:
            (tmp / "engines").mkdir()
            for f in _engine_files(Path(engines), manifest):
                shutil.copyfile(f, tmp / "engines" / f.name)
        manifest_io.seal(tmp, bundled)
    return out, _archive(out)


def _archive(folder: Path) -> Path:
    archive = folder.with_name(folder.name + ".tar.gz")
    with staged_file(archive) as tmp, tarfile.open(tmp, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name, recursive=True)
    return archive
