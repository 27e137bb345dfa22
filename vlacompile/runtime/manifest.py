"""`manifest.json`: what a graphs folder (or a bundle) holds, and the sha256 of every file in it.

Readers verify every hash before they use a file, so a truncated, tampered or half-written file is
refused by name instead of being run. The manifest itself carries `digest`, the sha256 of its own
canonical form (every other key, JSON with sorted keys and no spaces), checked on every read: an
edited prompt template, normalization or statistics key is refused like a modified graph. (It is an
integrity check, not a signature: whoever can rewrite the folder can recompute it.)
docs/CONTRACT.md describes every entry for client authors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import UserError
from ..fsutil import sha256, write_json

NAME = "manifest.json"
FAMILY = "vlacompile.graphs"
VERSION = 2  # 2: the complete client contract (docs/CONTRACT.md), the manifest digest, file sizes
SCHEMA = f"{FAMILY}/{VERSION}"


NOT_VALIDATED = {"completed": False}  # "validation" until `validate` finishes and records its verdict


def validation_problem(manifest: dict) -> str | None:
    """Why these graphs are not known to compute what PyTorch computes, or None."""
    v = manifest.get("validation") or NOT_VALIDATED
    if not v.get("completed"):
        return "was never validated, or its validation did not complete"
    if not v.get("passed"):
        return "failed validation (see its build.json or `vlacompile validate`)"
    return None


def canonical(manifest: dict) -> bytes:
    """What `digest` covers: every key but the digest, as sorted, compact, ASCII JSON."""
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest(manifest: dict) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()


def _check_schema(path: Path, schema) -> None:
    family, _, version = str(schema).partition("/")
    if family != FAMILY or not version.isdigit():
        raise UserError(f"{path}: not a vlacompile graphs manifest (schema {schema!r}); point at a folder written by "
                        "`vlacompile export`, `build` or `package`")
    if int(version) < VERSION:
        raise UserError(f"{path}: schema {schema} was written by an older vlacompile; this one reads {SCHEMA}: "
                        "export (or package) the graphs again")
    if int(version) > VERSION:
        raise UserError(f"{path}: schema {schema} was written by a newer vlacompile; this one reads {SCHEMA}: "
                        "upgrade vlacompile on this machine")


def parse(text: str | bytes, where: Path) -> dict:
    """A manifest from its bytes: valid JSON, a schema this version reads, and its own digest."""
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{where}: not valid JSON ({exc}); export the graphs again") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{where}: not a vlacompile graphs manifest (a JSON object); export the graphs again")
    _check_schema(where, manifest.get("schema"))
    if manifest.get("digest") != digest(manifest):
        raise UserError(f"{where} does not match its own digest (edited or damaged); export or copy the graphs "
                        "again instead of editing the manifest")
    return manifest


def read(folder: Path) -> dict:
    path = Path(folder) / NAME
    if not path.is_file():
        hint = (" (an archive: unpack it, or pass it to `vlacompile run --bundle` / `runtime.load`)"
                if str(folder).endswith((".tar.gz", ".tgz")) else "")
        raise UserError(f"{path} does not exist{hint}; export graphs first (`vlacompile export` or `vlacompile build`)")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    return parse(text, path)


def verify(folder: Path, manifest: dict, names=None) -> None:
    """Every listed file (or those in `names`) exists and has its recorded sha256."""
    files = manifest.get("files", {})
    for name in names if names is not None else files:
        path = Path(folder) / name
        if name not in files:
            raise UserError(f"{path} is not listed in {NAME}; export the graphs again")
        if not path.is_file():
            raise UserError(f"{path} is missing; copy the whole folder or export the graphs again")
        if sha256(path) != files[name]:
            raise UserError(f"{path} does not match its sha256 in {NAME} (truncated, modified or half-written); "
                            "export the graphs again")


def needed_files(manifest: dict) -> list[str]:
    """What running the graphs needs (graphs with their external data, tokenizer, statistics), not
    what checks and reports leave beside them: `validate` rewrites those, so an interrupted
    validation never makes the graphs themselves unusable."""
    derived = (".inputs.json", ".reference.json", "build.json", "report.html")
    return [n for n in manifest.get("files", {}) if not n.endswith(derived)]


def seal(folder: Path, manifest: dict, names=None) -> dict:
    """Record the sha256 and size of `names` (default: every file but the manifest), then the
    manifest's own digest, and write it."""
    folder = Path(folder)
    if names is None:
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != NAME and not p.name.startswith("."))
    manifest.setdefault("files", {}).update({n: sha256(folder / n) for n in names})
    manifest.setdefault("sizes", {}).update({n: (folder / n).stat().st_size for n in names})
    manifest["files"] = dict(sorted(manifest["files"].items()))
    manifest["sizes"] = {n: manifest["sizes"][n] for n in manifest["files"]}
    manifest["digest"] = digest(manifest)
    write_json(folder / NAME, manifest)
    return manifest
