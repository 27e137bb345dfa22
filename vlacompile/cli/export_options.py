"""Export flags (export, build) and validation flags (validate, build)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..errors import UserError

PRECISIONS = ("fp32", "fp16")


def precisions(value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    bad = [p for p in chosen if p not in PRECISIONS]
    if bad or not chosen:
        raise UserError(f"--precision {value!r}: give a comma-separated subset of {', '.join(PRECISIONS)}")
    return chosen


def _stack(options, fn):
    return functools.reduce(lambda f, opt: opt(f), reversed(options), fn)


def export_options(fn):
    from ..export import EXPORTERS

    return _stack([
        click.option("--out", type=click.Path(path_type=Path, file_okay=False), default="graphs", show_default=True,
                     help="Folder for the graphs, the manifest and the parity files (replaced as a whole)."),
        click.option("--precision", "precision", default="fp32,fp16", show_default=True,
                     help="Graph precisions, comma-separated. fp16 keeps norms, softmax and DDIM in fp32."),
        click.option("--exporter", type=click.Choice(EXPORTERS), default="torchscript", show_default=True,
                     help="torch.onnx exporter; TorchScript is 10x faster here, dynamo is PyTorch's default."),
    ], fn)


def validate_options(fn):
    return _stack([
        click.option("--samples", type=click.IntRange(1), default=8, show_default=True,
                     help="Calibration samples, spread over episodes, that every graph is compared on."),
        click.option("--backend", type=click.Choice(["onnxruntime"]), default="onnxruntime", show_default=True,
                     help="Runtime that runs the graphs."),
    ], fn)
