"""Writes that a reader never sees half done: everything is written under a temporary name in the
destination's folder, then renamed into place (a rename is atomic on one filesystem).

Torch-free: the edge runtime uses it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: Path, folder: bool) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; give results the usual permissions."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


@contextmanager
def staged_folder(final: Path, replace: bool = True):
    """Yield an empty temporary sibling of `final`; when the block ends normally it becomes `final`.

    An interrupted block (exception, Ctrl-C) removes the temporary folder and leaves any previous
    `final` as it was. With `replace`, an existing `final` is swapped out and deleted afterwards.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
        _default_mode(tmp, folder=True)
        if final.exists():
            if not replace:
                raise FileExistsError(final)
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def staged_file(final: Path):
    """Yield a temporary path beside `final`; when the block ends normally it becomes `final`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _default_mode(Path(tmp), folder=False)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> Path:
    with staged_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=1) + "\n")


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
