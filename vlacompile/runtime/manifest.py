"""`manifest.json`: what a graphs folder (or a bundle) holds, and the sha256 of every file in it.

Readers verify every hash before they use a file, so a truncated, tampered or half-written file is
refused by name instead of being run.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..fsutil import sha256, write_json

NAME = "manifest.json"
SCHEMA = "vlacompile.graphs/1"


def read(folder: Path) -> dict:
    path = Path(folder) / NAME
    if not path.is_file():
        raise UserError(f"{path} does not exist; export graphs first (`vlacompile export` or `vlacompile build`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); export the graphs again") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise UserError(f"{path}: schema {manifest.get('schema') if isinstance(manifest, dict) else None!r} is not "
                        f"{SCHEMA!r}; export the graphs again with this vlacompile")
    return manifest


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
    """Record the sha256 of `names` (default: every file but the manifest), then write the manifest."""
    folder = Path(folder)
    if names is None:
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != NAME and not p.name.startswith("."))
    manifest.setdefault("files", {}).update({n: sha256(folder / n) for n in names})
    manifest["files"] = dict(sorted(manifest["files"].items()))
    write_json(folder / NAME, manifest)
    return manifest
