"""Post-training quantization: the fp32 graphs -> INT8 or FP8 graphs in TensorRT's explicit (QDQ) form.

calibration data (calib_data/ less the held-out episodes, through the pipeline)
  -> plan (which GEMM nodes belong to which group; islands stay float)       targets.py
  -> recipe (given, or measured group by group on held-out samples)           recipe.py, sensitivity.py
  -> a measured recipe confirmed on every calibration image, or backed off     confirm.py
  -> quantize graph by graph, each calibrated on the quantized graphs' outputs chain.py, ort.py
The manifest records, per precision, the library, the scheme, the calibration method and samples,
the recipe with its evidence, and the islands with the reason each stays float.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..runtime.pipeline import QUANTIZED  # one list, the runtime's (it checks their manifest record)
from .recipe import ALL, AUTO, Recipe, check_modules, parse

# Chosen by measurement on the embedded default (docs/BENCHMARKS.md, "Calibration method"): with the
# 32 calibration samples, percentile (99.999th of a 2048-bin histogram) leaves 37% less error than
# max on the lowest held-out actions cosine (0.99796 against 0.99684), as much as entropy (0.99812),
# and calibrates the three graphs in 20 s where entropy takes 364 s and max 8 s.
DEFAULT_METHOD = "percentile"
QTYPE = {"int8": "int8", "fp8": "float8 e4m3fn"}


@dataclass(frozen=True)
class QuantConfig:
    method: str = DEFAULT_METHOD  # int8 calibration: max | entropy | percentile (fp8: ONNX Runtime's distribution)
    recipe: Recipe | None = None  # None: measured by sensitivity at build time


def method_for(precision: str, cfg: QuantConfig) -> str:
    from .ort import FP8_METHOD

    return cfg.method if precision == "int8" else FP8_METHOD


def check_config(cfg: QuantConfig, precisions, exporter: str, data=None, model=None) -> None:
    """Flags, data and recipe, before any work. `data`: export's (calibration, held-out, folder);
    `model`: the rewritten model, whose modules a recipe's keep_float names."""
    from .feeds import check_samples
    from .ort import INT8_METHODS

    if cfg.method not in INT8_METHODS:
        raise UserError(f"--quant-method {cfg.method!r}: pick one of {', '.join(INT8_METHODS)}")
    if exporter != "torchscript" and any(p in QUANTIZED for p in precisions):
        raise UserError(f"--exporter {exporter} with --precision int8/fp8: quantization finds the float islands by "
                        "the module scopes that TorchScript's node names carry; export with --exporter torchscript")
    if data is not None:
        for p in precisions:
            check_samples(len(data[0]), method_for(p, cfg), data[2])
    if model is not None and cfg.recipe is not None:
        check_modules(cfg.recipe, model)


def quantize(policy, compressed, sources: dict[str, Path], out_dir: Path, precisions, cfg: QuantConfig,
             calib_samples, heldout, calib_dir="calib_data", progress: bool = True) -> dict:
    """Write `<graph>.<precision>.onnx` for each quantized precision into `out_dir` from the fp32
    graphs `sources` (graph -> path, in pipeline order); return the manifest's `quantization` entry."""
    import onnx
    from tqdm import tqdm

    from ..compare.parity import TOLERANCES
    from ..models import export_declaration
    from . import confirm, ort, sensitivity
    from .chain import cosines, quantize_chain, run_chain
    from .feeds import pipeline_inputs
    from .targets import plan

    family = export_declaration(policy)
    groups = tuple(family.GROUPS)
    check_config(cfg, precisions, "torchscript", (calib_samples, heldout, calib_dir), compressed)
    keep = cfg.recipe.keep_float if cfg.recipe else ()
    islands = {**family.ISLANDS, **selection_inputs(compressed)}
    plans = {g: plan(g, onnx.load(str(path), load_external_data=False), compressed, family.group_of, islands,
                     keep, path.parent) for g, path in sources.items()}
    calib = pipeline_inputs(policy, calib_samples)
    held = pipeline_inputs(policy, heldout, seed=10_000)  # other noise than calibration's
    fp32 = {g: "fp32" for g in sources}
    wide = confirm.wide_inputs(policy, [*calib_samples, *heldout]) if cfg.recipe is None else None
    record = {}
    with tempfile.TemporaryDirectory(prefix=".quant.", dir=out_dir) as scratch, \
            tqdm(precisions, desc="quantize", unit="precision", disable=not progress) as bar:
        scratch = Path(scratch)
        reference = run_chain(sources, fp32, held)
        wide_reference = run_chain(sources, fp32, wide.tensors) if wide else None
        for precision in bar:
            method = method_for(precision, cfg)
            gate = TOLERANCES[precision].cosine_for("actions")  # the budget is taken from the parity gate
            recipe = cfg.recipe
            if recipe is None:  # the two long steps, named on the bar (a minute or two on cogact-tiny)
                bar.set_postfix_str(f"{precision}: each group alone on {len(held)} held-out samples")
                recipe = sensitivity.measure(sources, plans, groups, calib, held, precision, method, scratch, gate,
                                             reference)
                bar.set_postfix_str(f"{precision}: the recipe on {len(wide.tensors)} inputs")
                recipe = confirm.confirm(recipe, sources, plans, calib, wide, wide_reference, precision, method,
                                         scratch)
            bar.set_postfix_str(f"{precision}: quantizing")
            files = {g: Path(out_dir) / f"{g}.{precision}.onnx" for g in sources}
            nodes = {g: plans[g].nodes(recipe.quantize, recipe.keep_float) for g in sources}
            quantize_chain(sources, files, nodes, calib, precision, method, scratch)
            got = run_chain(files, {g: precision if nodes[g] else "fp32" for g in sources}, held)
            evidence = dict(recipe.evidence)
            evidence["recipe"] = _cosine_row(cosines(got, reference))
            if recipe.source == "sensitivity" and set(recipe.quantize) != set(groups):
                evidence["all"] = _all_groups(sources, plans, groups, calib, held, precision, method, scratch,
                                              reference)
            record[precision] = {
                "library": ort.version(), "format": "QDQ: TensorRT explicit quantization",
                "type": QTYPE[precision], "weights": "per output channel, symmetric (zero point 0)",
                "activations": "per tensor, symmetric (zero point 0), on the inputs of the quantized GEMMs",
                "method": method,
                "calibration": {"samples": len(calib), "data": str(calib_dir),
                                "inputs": "calibration images and prompts through the pipeline: each graph is "
                                          "calibrated on the outputs of the quantized graphs before it"},
                "recipe": recipe.to_json(), "evidence": evidence,
                "graphs": {g: plans[g].summary(recipe.quantize, recipe.keep_float) for g in sources},
                "islands": islands}
    return record


def selection_inputs(compressed) -> dict:
    """The island of the language layers before the token selection, by module path (their node
    names carry no layer index that is the same across families). Their output is what the static
    top-k ranks: on the default shipped 2026-12-05 int8 attention in layers 0-1 swapped 22 of the
    kept tokens on one validation image and failed the llm graph's parity (cosine 0.9795), while
    the same recipe with these two layers float passed (0.99999). Empty without a selector."""
    from ..passes.family import target_of

    target = target_of(compressed)
    selector = target.selector()
    if selector is None:
        return {}
    before = {id(layer) for layer in list(target.layers())[:selector.layer]}
    paths = [name for name, module in compressed.named_modules() if id(module) in before]
    return {"selection_inputs": {
        "modules": paths,
        "why": "the layers before the token selection make the scores its static top-k ranks: their "
               "quantization error swaps near-tied tokens, a discrete change no later layer undoes"}}


def _cosine_row(cos) -> dict:
    return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}


def _all_groups(sources, plans, groups, calib, held, precision, method, scratch, reference) -> dict:
    """Every group quantized: the row that shows what the recipe's exclusions buy."""
    from .chain import cosines, quantize_chain, run_chain

    files = {g: Path(scratch) / f"{g}.all.{precision}.onnx" for g in sources}
    nodes = {g: plans[g].nodes(groups) for g in sources}
    quantize_chain(sources, files, nodes, calib, precision, method, scratch)
    return _cosine_row(cosines(run_chain(files, {g: precision for g in sources}, held), reference))


__all__ = ["ALL", "AUTO", "DEFAULT_METHOD", "QUANTIZED", "QuantConfig", "Recipe", "check_config", "method_for",
           "parse", "quantize"]
