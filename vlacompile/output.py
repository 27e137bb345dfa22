"""Output folders: one writer at a time, stale leftovers cleaned, and nothing deleted that
vlacompile did not write.

`claim(final, kind)` is held for as long as a command writes `final` (an export, a whole build, a
package): it takes an exclusive lock beside it (a second writer gets one line instead of corrupting
the first one's output), removes what interrupted writes of it left behind, and refuses to replace
an existing folder that is not a previous vlacompile output of the same kind, or that holds files
vlacompile did not put there, unless `force`.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from .errors import UserError
from .fsutil import check_can_create, check_name, remove_partials, writing

KINDS = {"graphs": "a graphs folder (`vlacompile export` / `build`)", "bundle": "a bundle (`vlacompile package`)"}
DERIVED = ("build.json", "report.html")  # written beside the graphs before they are sealed into the manifest


def _read_manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(manifest, dict) and str(manifest.get("schema", "")).startswith("vlacompile.graphs/"):
        return manifest
    return None


def kind_of(manifest: dict) -> str:
    return "bundle" if "bundle" in manifest else "graphs"


def ours(manifest: dict, kind: str) -> set[str]:
    """Every file name a vlacompile output of `kind` with this manifest may hold."""
    names = {"manifest.json", *manifest.get("files", {})}
    if kind == "graphs":  # parity files of an interrupted validation, report files of an interrupted build
        names |= {f"{g}.{s}" for g in manifest.get("pipeline", []) for s in ("inputs.json", "reference.json")}
        names |= set(DERIVED)
    return names


def _files(folder: Path):
    return (str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def foreign_files(folder: Path, kind: str, show: int = 3) -> tuple[str | None, list[str]]:
    """(why `folder` is not replaceable as `kind`, or None; up to `show` files vlacompile did not
    write). Stops looking once it has them: --out may be a large folder by mistake."""
    manifest = _read_manifest(folder)
    if manifest is None:
        found = list(islice(_files(folder), show + 1))
        return ("is not a vlacompile output" if found else None), sorted(found)
    if kind_of(manifest) != kind:
        return f"is {KINDS[kind_of(manifest)]}, not {KINDS[kind]}", []
    allowed = ours(manifest, kind)
    unknown = sorted(islice((f for f in _files(folder) if f not in allowed), show + 1))
    return ("holds files vlacompile did not write" if unknown else None), unknown


def check_replaceable(final: Path, kind: str, force: bool = False) -> None:
    final = Path(final)
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise UserError(f"--out {final} exists and is not a folder; choose another --out")
    check_can_create(final)  # a file or a folder that cannot be written on the way: before any work
    if force or not final.exists():
        return
    why, files = foreign_files(final, kind)
    if why is not None:
        example = f" ({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})" if files else ""
        raise UserError(f"--out {final} {why}{example}; choose another --out, or pass --force to replace it "
                        "(everything in it is deleted)")


_held: dict[Path, int] = {}  # locks this process holds, so that a build's export can claim what the build locked


@contextmanager
def lock(final: Path):
    """An exclusive, non-blocking lock on writing `final`, released when the block ends (or the
    process dies: the kernel drops it, so there is never a stale lock). Re-entrant in one process."""
    final = Path(final)
    check_name(final)
    key = final.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    path = final.parent / f".{final.name}.lock"
    fd = _acquire(path, final)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            path.unlink(missing_ok=True)  # while still locked: a waiter then sees a fresh file, not this one
    finally:
        os.close(fd)


def _acquire(path: Path, final: Path) -> int:
    """An fd holding the flock on `path`, which is still the file at `path` (the holder before us
    may have removed it between our open and our lock: then we try again on the new one)."""
    with writing(final):
        path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        with writing(final):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"another vlacompile (pid {holder}) is writing {final}; wait for it to finish, or choose "
                            "another --out") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise UserError(f"could not lock {final}: {path} keeps changing; is another vlacompile starting and stopping?")


@contextmanager
def claim(final: Path, kind: str, force: bool = False, companions: tuple[Path, ...] = ()):
    """Lock `final`, clean what interrupted writes of it (and of `companions`, e.g. the bundle's
    archive) left, and check that it may be replaced. Hold it while writing."""
    with lock(final):
        for path in (final, *companions):
            remove_partials(path)
        check_replaceable(final, kind, force)
        yield
