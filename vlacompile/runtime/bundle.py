"""Bundles: one folder (and its .tar.gz) that holds everything a device needs, and nothing it runs
or unpickles. Extraction refuses absolute paths, `..` members, links and special files, and the
manifest's hashes are checked before anything is used.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from ..errors import UserError
from ..fsutil import staged_folder


def _check_member(archive: Path, member: tarfile.TarInfo) -> str:
    path = PurePosixPath(member.name)
    if path.is_absolute() or member.name.startswith(("/", "\\")):
        raise UserError(f"{archive}: member {member.name!r} has an absolute path; refusing to extract this archive")
    if ".." in path.parts:
        raise UserError(f"{archive}: member {member.name!r} points outside the bundle (..); refusing to extract it")
    if not (member.isfile() or member.isdir()):
        raise UserError(f"{archive}: member {member.name!r} is a link or special file; a bundle holds only files")
    return path.parts[0]


def extract(archive: Path, dest: Path) -> Path:
    """Unpack `archive` (one top folder) under `dest`; return that folder. Nothing is written when
    any member is unsafe: every member is checked before the first byte is extracted."""
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            tops = {_check_member(archive, m) for m in members}
            if len(tops) != 1:
                raise UserError(f"{archive}: a bundle archive holds one top folder, this one has {len(tops)}")
            top = tops.pop()
            inside = [m for m in members if len(PurePosixPath(m.name).parts) > 1]
            for m in inside:  # extract the top folder's contents straight into the staging folder
                m.name = str(PurePosixPath(*PurePosixPath(m.name).parts[1:]))
            with staged_folder(dest / top) as tmp:
                tar.extractall(tmp, members=inside, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"{archive}: not a readable bundle archive ({exc}); copy it again") from None
    return dest / top
