"""Writes that a reader never sees half done: everything is written under a temporary name in the
destination's folder, then renamed into place (a rename is atomic on one filesystem).

Torch-free: the edge runtime uses it too.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

# Errors that mean "this destination cannot be written", whatever the file: read-only file system,
# full disk or quota. Permission errors count when they concern the destination.
ALWAYS_WRITE_ERRORS = (errno.EROFS, errno.ENOSPC, errno.EDQUOT)
DESTINATION_ERRORS = (errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: Path, folder: bool) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; give results the usual permissions."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def _under(path, folder) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError):
        return False


def write_error(final: Path, exc: OSError) -> UserError | None:
    """One line for an OSError that says `final` cannot be written there; None for other errors."""
    concerns = exc.filename is None or _under(exc.filename, Path(final).parent) or _under(final, exc.filename)
    if exc.errno in ALWAYS_WRITE_ERRORS or (exc.errno in DESTINATION_ERRORS and concerns):
        where = f": {exc.filename}" if exc.filename and str(exc.filename) != str(final) else ""
        return UserError(f"cannot write {final} ({exc.strerror}{where}); choose another --out, or free space or "
                         "permissions there")
    return None


def check_name(final: Path) -> None:
    if Path(final).name in ("", ".", ".."):
        raise UserError(f"--out {final}: name a folder to write (e.g. --out graphs or --out bundle), not the current "
                        "or a parent folder")


def check_can_create(path: Path) -> None:
    """Refuse, before any work, an output path under an existing file (e.g. --out README.md/x.json)
    or in a folder that cannot be written."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot write {path}: {parent} is a file, not a folder; choose another --out")
            check_writable(path, parent)
            return


def check_writable(final: Path, parent: Path) -> None:
    """Refuse `final` when its nearest existing folder `parent` takes no new entry (read-only, no
    permission): one empty folder is created there and removed, before minutes of work are lost."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vlacompile-probe-", dir=parent))
    except OSError as exc:
        raise UserError(f"cannot write {final} ({exc.strerror} in {parent}); choose another --out, or free space or "
                        "permissions there") from None


@contextmanager
def writing(final: Path):
    """Turn a failure to write `final` (read-only, full, not a folder, ...) into one UserError."""
    try:
        yield
    except OSError as exc:
        error = write_error(final, exc)
        if error is None:
            raise
        raise error from None


def partials(final: Path) -> list[Path]:
    """What an interrupted staged write of `final` leaves beside it (Ctrl-C cleans up itself; a kill
    cannot)."""
    final = Path(final)
    return [p for suffix in (".partial", ".old") for p in final.parent.glob(f".{final.name}.*{suffix}")]


def remove_partials(final: Path) -> None:
    """Remove leftovers of an interrupted write of `final`. Only call it while holding the lock on
    `final` (see output.claim), so no live writer's staging folder is taken."""
    for p in partials(final):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@contextmanager
def staged_folder(final: Path, replace: bool = True):
    """Yield an empty temporary sibling of `final`; when the block ends normally it becomes `final`.

    An interrupted block (exception, Ctrl-C) removes the temporary folder and leaves any previous
    `final` as it was. With `replace`, an existing `final` is swapped out and deleted afterwards:
    callers check first that it is theirs to replace (output.claim).
    """
    final = Path(final)
    check_name(final)
    with writing(final):
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
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        error = write_error(final, exc)
        if error is None:
            raise
        raise error from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def staged_file(final: Path):
    """Yield a temporary path beside `final`; when the block ends normally it becomes `final`."""
    final = Path(final)
    with writing(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
        os.close(fd)
    try:
        yield Path(tmp)
        _default_mode(Path(tmp), folder=False)
        os.replace(tmp, final)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        error = write_error(final, exc)
        if error is None:
            raise
        raise error from None
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
