"""`vlacompile package`: the graphs folder (and engines, if any) as one bundle for an edge device.

The bundle is a folder and a `.tar.gz` of it. Its manifest lists the sha256 and size of every file
in it, and keeps the hash of every source graph under "sources", so engines built on the device from
a bundle without ONNX can still be matched to the graphs they came from. The folder and the archive
never disagree: the old archive is removed before the new folder replaces the old one, and the new
archive follows.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from .errors import UserError
from .fsutil import check_name, staged_file, staged_folder
from .output import claim, lock
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


def archive_path(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + ".tar.gz")


def _check_places(graphs: Path, out: Path) -> None:
    g, o = graphs.resolve(), out.resolve()
    if o == g or o in g.parents:
        raise UserError(f"--out {out} holds the graphs being packaged ({graphs}); choose a new folder, e.g. --out bundle")


def package(graphs: Path, out: Path, engines: Path | None = None, onnx: bool = True, force: bool = False,
            allow_unvalidated: bool = False) -> tuple[Path, Path]:
    """-> (bundle folder, bundle archive `<out>.tar.gz`). Graphs whose validation did not complete or
    failed are refused unless `allow_unvalidated` (the bundle then says so)."""
    graphs, out = Path(graphs), Path(out)
    check_name(out)
    _check_places(graphs, out)
    if not onnx and engines is None:
        raise UserError("--no-onnx leaves nothing to run: pass --engines too")
    archive = archive_path(out)
    with lock(graphs), claim(out, "bundle", force, companions=(archive,)):
        manifest = manifest_io.read(graphs)
        problem = manifest_io.validation_problem(manifest)
        if problem and not allow_unvalidated:
            raise UserError(f"{graphs} {problem}; run `vlacompile validate --graphs {graphs}` first, or package it "
                            "anyway with --allow-unvalidated")
        manifest_io.verify(graphs, manifest)
        return _write(graphs, out, archive, manifest, engines, onnx)


def _write(graphs: Path, out: Path, archive: Path, manifest: dict, engines: Path | None, onnx: bool):
    graph_files = {d["file"] for decls in manifest["graphs"].values() for d in decls.values()}
    keep = [n for n in manifest["files"] if onnx or (n not in graph_files and not n.endswith(".onnx.data"))]
    bundled = {**manifest, "files": {}, "sizes": {}, "sources": {n: manifest["files"][n] for n in sorted(graph_files)},
               "bundle": {"onnx": onnx, "engines": engines is not None}}
    with staged_file(archive) as new_archive:
        with staged_folder(out) as tmp:
            for name in keep:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(graphs / name, tmp / name)
            if engines is not None:
                (tmp / "engines").mkdir()
                for f in _engine_files(Path(engines), manifest):
                    shutil.copyfile(f, tmp / "engines" / f.name)
            manifest_io.seal(tmp, bundled)
            with tarfile.open(new_archive, mode="w:gz") as tar:
                tar.add(tmp, arcname=out.name, recursive=True)
            archive.unlink(missing_ok=True)  # an interruption from here on leaves no archive of other settings
    return out, archive
