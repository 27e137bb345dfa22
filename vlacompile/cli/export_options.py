"""Export flags (export, build) and validation flags (validate, build)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..errors import UserError
from ..export import PRECISIONS
from ..quant import DEFAULT_METHOD


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
                     help="Folder for the graphs, the manifest and the parity files. An existing one is replaced as a "
                          "whole, and only if it is a previous graphs folder holding nothing else (see --force)."),
        click.option("--force", is_flag=True,
                     help="Replace --out even if it holds files vlacompile did not write (they are deleted)."),
        click.option("--precision", "precision", default="fp32,fp16", show_default=True,
                     help="Graph precisions, comma-separated (fp32, fp16, bf16, int8, fp8). fp16 and bf16 keep "
                          "norms, softmax and DDIM in fp32; int8 and fp8 are quantized (QDQ) from fp32, calibrated "
                          "on --calib-data. bf16 and fp8 run on TensorRT only: ONNX Runtime has no CPU bf16 kernels "
                          "and no fp8 compute, so here they are exported (fp8 also linted) but neither checked nor "
                          "timed."),
        click.option("--exporter", type=click.Choice(EXPORTERS), default="torchscript", show_default=True,
                     help="torch.onnx exporter; TorchScript is 10x faster here, dynamo is PyTorch's default."),
    ], quant_options(fn))


def quant_options(fn):
    """--quant-method / --quant-recipe (export, build, bench)."""
    return _stack([
        click.option("--quant-method", default=DEFAULT_METHOD, show_default=True,
                     help="int8 calibration: max, entropy or percentile (fp8: ONNX Runtime's distribution)."),
        click.option("--quant-recipe", default="auto", show_default=True,
                     help="Groups int8 / fp8 quantize: auto (measure each group on held-out samples, keep float "
                          "what overspends the error budget, then drop groups until the pipeline passes its gate "
                          "on every calibration image), all, or a JSON recipe file (the manifest's form)."),
    ], fn)


def quant_config(quant_method: str, quant_recipe: str, policy, chosen, exporter: str, calib_dir):
    """--quant-method / --quant-recipe -> QuantConfig, checked against the model family's groups and,
    when int8 / fp8 is asked for, against the calibration set, before any calibration or tracing."""
    from ..data.calib import load_calib, split_heldout
    from ..models import export_declaration
    from ..quant import QUANTIZED, QuantConfig, check_config, parse

    family = export_declaration(policy)
    quantized = [p for p in chosen if p in QUANTIZED]
    if quantized and not family.GROUPS:
        raise UserError(f"--precision {','.join(quantized)}: {policy.source} is a {family.FAMILY} policy, for which "
                        "no int8 / fp8 quantization groups are declared; export it at fp32, fp16 or bf16")
    cfg = QuantConfig(quant_method, parse(quant_recipe, tuple(family.GROUPS)))
    if quantized:
        calib, heldout = split_heldout(load_calib(calib_dir), where=calib_dir)
        check_config(cfg, quantized, exporter, (calib, heldout, calib_dir))
    return cfg


def validate_options(fn):
    return _stack([
        click.option("--samples", type=click.IntRange(1), default=8, show_default=True,
                     help="Calibration samples, spread over episodes, that every graph is compared on."),
        click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt"]), default="onnxruntime",
                     show_default=True, help="Runtime that runs the graphs: ONNX Runtime, or TensorRT engines."),
        click.option("--engines", type=click.Path(path_type=Path, file_okay=False), default="engines",
                     show_default=True, help="Engines folder (`vlacompile engines --out`) for --backend tensorrt."),
    ], fn)


def engine_options(fn):
    """TensorRT builder flags (engines, build). The precision is the graphs': they are strongly typed."""
    return _stack([
        click.option("--workspace-mb", type=click.IntRange(1), default=None,
                     help="Limit of TensorRT's workspace memory pool, in MiB (default: TensorRT's)."),
        click.option("--opt-level", type=click.IntRange(0, 5), default=None,
                     help="Builder optimization level 0-5 (default: TensorRT's, 3); higher builds slower."),
        click.option("--timing-cache", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="Timing cache reused across builds (default: <engines>/timing.cache)."),
    ], fn)
