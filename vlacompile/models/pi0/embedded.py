"""pi0-tiny as trained by `vlacompile train --preset pi0-tiny` on the simulator: a LeRobot-layout
folder in assets/pi0-tiny/ plus training.json, the record of how it was made, whose weights sha256
is checked at every load."""

from __future__ import annotations

import json

from ...errors import UserError
from ...fsutil import sha256
from .checkpoint import WEIGHTS as WEIGHTS_NAME, load_folder
from .policy import ASSETS, Pi0Policy

FOLDER = ASSETS / "pi0-tiny"
WEIGHTS, RECORD = FOLDER / WEIGHTS_NAME, FOLDER / "training.json"


def training_record() -> dict:
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{RECORD}: pi0-tiny's training record is unreadable ({exc}); reinstall vlacompile") from None


def embedded_policy() -> Pi0Policy:
    if not WEIGHTS.is_file() or sha256(WEIGHTS) != training_record().get("weights_sha256"):
        raise UserError(f"{WEIGHTS} is missing or does not match the sha256 in {RECORD.name}; reinstall vlacompile "
                        f"or retrain it with `vlacompile train --preset pi0-tiny --out {FOLDER}`")
    policy = load_folder(FOLDER)
    policy.source = "pi0-tiny"
    return policy
