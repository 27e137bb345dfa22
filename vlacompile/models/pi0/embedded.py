"""pi0-tiny as trained by `vlacompile train --preset pi0-tiny` on the simulator: a LeRobot-layout
folder in assets/pi0-tiny/ plus training.json, the record of how it was made, whose weights sha256
is checked at every load."""

from __future__ import annotations

from ..shipped import check_weights, read_record
from .checkpoint import WEIGHTS as WEIGHTS_NAME, load_folder
from .policy import ASSETS, Pi0Policy

FOLDER = ASSETS / "pi0-tiny"
WEIGHTS, RECORD = FOLDER / WEIGHTS_NAME, FOLDER / "training.json"


def training_record() -> dict:
    return read_record(RECORD, "pi0-tiny")


def embedded_policy() -> Pi0Policy:
    check_weights(WEIGHTS, RECORD, "pi0-tiny", "make train-pi0")
    policy = load_folder(FOLDER)
    policy.source = "pi0-tiny"
    return policy
