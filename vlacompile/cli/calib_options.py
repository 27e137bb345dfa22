"""Where calibration data and results come from (export, validate, fidelity, build)."""

from __future__ import annotations

import functools
from pathlib import Path

import click


def calib_options(fn):
    options = [
        click.option("--calib", "calib_dir", type=click.Path(path_type=Path), default="calib_data", show_default=True,
                     help="Calibration folder (manifest.jsonl + images)."),
        click.option("--calibration", "stored", type=click.Path(path_type=Path), default=None,
                     help="Use this stored calibration folder instead of the cache."),
        click.option("--cache-dir", type=click.Path(path_type=Path), default=".vlacompile-cache", show_default=True,
                     help="Where calibrations are stored and reused, keyed by weights, data and settings."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), fn)
