"""Weights shipped in the package with the record of how they were trained (training.json), whose
sha256 of the weights is checked at every load: a damaged or swapped file is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..fsutil import sha256


def read_record(record: Path, what: str) -> dict:
    try:
        return json.loads(record.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{record}: {what}'s training record is unreadable ({exc}); reinstall vlacompile") from None


def check_weights(weights: Path, record: Path, what: str, retrain: str) -> None:
    """Refuse `weights` unless its sha256 is the one `record` holds; `retrain` is the command that remakes it."""
    if not weights.is_file() or sha256(weights) != read_record(record, what).get("weights_sha256"):
        raise UserError(f"{weights} is missing or does not match the sha256 in {record.name}; reinstall vlacompile "
                        f"or retrain it with `{retrain}`")
