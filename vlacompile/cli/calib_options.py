"""Where calibration data and results come from (calibrate, fidelity, export, validate, build, bench).

Three things, one prefix:
  --calib-data DIR     the calibration data: manifest.jsonl + images (default calib_data/)
  --calib-cache DIR    where computed calibrations are stored and reused (default .vlacompile-cache/)
  --calib-result DIR   one stored calibration (a calib-<key> folder of the cache) to use as is
The older spellings --calib, --cache-dir and --calibration (calibrate: --out) still work, unlisted.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from .options import OldNames

DATA_HELP = "Calibration data: a folder with manifest.jsonl and its images."
CACHE_HELP = "Where computed calibrations are stored and reused, keyed by weights, data and settings."


def calib_data_option(fn):
    return click.option("--calib-data", "--calib", "calib_dir", cls=OldNames, type=click.Path(path_type=Path),
                        default="calib_data", show_default=True, help=DATA_HELP)(fn)


def calib_cache_option(*old_names: str):
    return click.option("--calib-cache", *old_names, "cache_dir", cls=OldNames, type=click.Path(path_type=Path),
                        default=".vlacompile-cache", show_default=True, help=CACHE_HELP)


def calib_options(fn):
    options = [
        calib_data_option,
        click.option("--calib-result", "--calibration", "stored", cls=OldNames, type=click.Path(path_type=Path),
                     default=None, help="Use this stored calibration (a calib-<key> folder written by `vlacompile "
                                        "calibrate`) instead of looking one up in --calib-cache."),
        calib_cache_option("--cache-dir"),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), fn)
