"""Bundles: one folder (and its .tar.gz) that holds everything a device needs, and nothing it runs
or unpickles.

Extraction reads every member header and the manifest before the first byte is written, and refuses
absolute paths, `..` members, links and special files, members the manifest does not list or whose
size is not the listed one, and an archive that would not fit where it is unpacked. The manifest's
hashes are then checked before anything is used.
"""

from __future__ import annotations

import errno
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import UserError
from ..fsutil import staged_folder
from ..output import claim
from . import manifest as manifest_io

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
MAX_MEMBERS = 10_000  # a bundle holds a few dozen files
MAX_MANIFEST_BYTES = 64 << 20
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _check_member(archive: Path, member: tarfile.TarInfo) -> str:
    path = PurePosixPath(member.name)
    if path.is_absolute() or member.name.startswith(("/", "\\")):
        raise UserError(f"{archive}: member {member.name!r} has an absolute path; refusing to extract this archive")
    if ".." in path.parts:
        raise UserError(f"{archive}: member {member.name!r} points outside the bundle (..); refusing to extract it")
    if not (member.isfile() or member.isdir()):
        raise UserError(f"{archive}: member {member.name!r} is a link or special file; a bundle holds only files")
    return path.parts[0]


def _headers(archive: Path, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for member in tar:  # headers only; stops at the first unsafe member or past the cap
        _check_member(archive, member)
        members.append(member)
        if len(members) > MAX_MEMBERS:
            raise UserError(f"{archive}: more than {MAX_MEMBERS} members; a bundle holds only the files its manifest "
                            "lists: package it again with `vlacompile package`")
    tops = {PurePosixPath(m.name).parts[0] for m in members}
    if len(tops) != 1:
        raise UserError(f"{archive}: a bundle archive holds one top folder, this one has {len(tops)}")
    return members


def _read_manifest(archive: Path, tar: tarfile.TarFile, members: list, top: str) -> dict:
    found = [m for m in members if m.name == f"{top}/{manifest_io.NAME}" and m.isfile()]
    if not found:
        raise UserError(f"{archive}: no {top}/{manifest_io.NAME}; not a vlacompile bundle (make one with "
                        "`vlacompile package`)")
    if found[0].size > MAX_MANIFEST_BYTES:
        raise UserError(f"{archive}: {found[0].name} is {found[0].size} bytes, not a vlacompile manifest")
    return manifest_io.parse(tar.extractfile(found[0]).read(), Path(f"{archive}:{found[0].name}"))


def _check_listed(archive: Path, members: list, top: str, manifest: dict) -> int:
    """Every member is a file the manifest lists, at its listed size, once (or a folder holding
    one); every listed file is there. -> total bytes."""
    sizes = {**manifest.get("sizes", {}), manifest_io.NAME: None}
    folders = {str(p) for n in sizes for p in PurePosixPath(n).parents if str(p) != "."}
    seen, total = set(), 0
    for m in members:
        rel = str(PurePosixPath(*PurePosixPath(m.name).parts[1:])) if m.name != top else "."
        if m.isdir():
            if rel != "." and rel not in folders:
                raise UserError(f"{archive}: folder {m.name!r} holds no file its manifest lists; package it again")
            continue
        if rel not in sizes or rel in seen:
            raise UserError(f"{archive}: member {m.name!r} is not listed in its manifest (or appears twice); a bundle "
                            "holds only its listed files: package it again")
        if sizes[rel] is not None and m.size != sizes[rel]:
            raise UserError(f"{archive}: member {m.name!r} is {m.size} bytes, its manifest says {sizes[rel]}; "
                            "copy or package it again")
        seen.add(rel)
        total += m.size
    missing = sorted(set(sizes) - seen)
    if missing:
        raise UserError(f"{archive}: lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}, listed in its "
                        "manifest; copy it again")
    return total


def _check_space(archive: Path, dest: Path, total: int) -> None:
    free = shutil.disk_usage(dest).free
    if total > free:
        raise UserError(f"{archive} needs {total / 1e6:.1f} MB to unpack and {dest} has {free / 1e6:.1f} MB free; "
                        "free some space, or unpack it on a larger disk and pass the folder")


def extract(archive: Path, dest: Path) -> Path:
    """Unpack `archive` (one top folder) under `dest`; return that folder. Nothing is written when
    any member is unsafe or unlisted: every header and the manifest are checked first."""
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = _headers(archive, tar)
            top = PurePosixPath(members[0].name).parts[0]
            total = _check_listed(archive, members, top, _read_manifest(archive, tar, members, top))
            dest.mkdir(parents=True, exist_ok=True)
            _check_space(archive, dest, total)
            inside = [m for m in members if len(PurePosixPath(m.name).parts) > 1]
            for m in inside:  # extract the top folder's contents straight into the staging folder
                m.name = str(PurePosixPath(*PurePosixPath(m.name).parts[1:]))
            with claim(dest / top, "bundle"), staged_folder(dest / top) as tmp:
                tar.extractall(tmp, members=inside, filter="data")
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise UserError(f"{dest}: no space left to unpack {archive}; free some space, or unpack it on a larger "
                            "disk and pass the folder") from None
        if exc.errno is None:
            raise UserError(f"{archive}: not a readable bundle archive ({exc}); copy it again") from None
        raise UserError(f"{archive}: cannot be unpacked into {dest} ({exc.strerror}); check the folder's "
                        "permissions") from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise UserError(f"{archive}: not a readable bundle archive ({exc}); copy it again") from None
    return dest / top
