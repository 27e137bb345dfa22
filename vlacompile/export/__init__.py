"""Split export: a rewritten model -> static ONNX graphs per precision, plus manifest.json.

The folder is written under a temporary name and renamed into place only when every graph, the
copied tokenizer and statistics and the manifest (with every file's sha256) are written: an
interrupted export leaves the previous folder, or none, never a partial one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import staged_folder, write_json
from ..output import claim
from ..quant import QUANTIZED, QuantConfig
from ..runtime import manifest as manifest_io
from ..runtime.pipeline import PRECISIONS  # one list, the runtime's (the runtime must not import export)
from ..workers import small_model_workers, with_state
from .onnx import EXPORTERS, OPSET, export_graph
from .spec import GraphSpec, TensorSpec

DEFAULT_PRECISIONS = ("fp32", "fp16")
DEFAULT_DIR = Path("graphs")


@dataclass(frozen=True)
class ExportConfig:
    precisions: tuple[str, ...] = DEFAULT_PRECISIONS
    exporter: str = "torchscript"
    opset: int = OPSET
    quant: QuantConfig = field(default_factory=QuantConfig)  # int8 / fp8 only


@dataclass
class Exported:
    folder: Path
    manifest: dict
    seconds: dict = field(default_factory=dict)  # "<graph>.<precision>" -> export wall time


def graph_file(name: str, precision: str) -> str:
    return f"{name}.{precision}.onnx"


def export(policy, compressed, out_dir: Path, cfg: ExportConfig, sample: dict, provenance: dict,
           progress: bool = True, data=None, force: bool = False) -> Exported:
    """`sample`: every graph tensor of one calibration sample (the family's `reference_tensors`), used
    as the tracing inputs. `provenance`: the compile config and calibration entries of the manifest.
    `data`: (calibration samples, held-out samples, calibration folder), needed for int8 / fp8.
    An existing `out_dir` is replaced only if it is a previous graphs folder holding nothing else,
    or with `force` (see output.claim)."""
    with claim(Path(out_dir), "graphs", force):
        return _export(policy, compressed, Path(out_dir), cfg, sample, provenance, progress, data)


def _export(policy, compressed, out_dir: Path, cfg: ExportConfig, sample: dict, provenance: dict,
            progress: bool, data) -> Exported:
    import shutil

    import torch
    from tqdm import tqdm

    from .. import __version__
    from ..models import export_declaration

    family = export_declaration(policy)
    specs = family.graphs(compressed)
    quantized = [p for p in cfg.precisions if p in QUANTIZED]
    if quantized:  # before any tracing: a bad flag costs nothing
        from ..quant import check_config

        if data is None:
            raise ValueError("int8 / fp8 export needs calibration data: pass data=(calibration, held-out, folder)")
        check_config(cfg.quant, quantized, cfg.exporter, data, compressed)
    # int8 / fp8 graphs are quantized from the fp32 ones, traced here even when fp32 is not asked for
    traced = [p for p in cfg.precisions if p not in QUANTIZED]
    traced += ["fp32"] if quantized and "fp32" not in traced else []
    jobs = [(p, s) for p in traced for s in specs]
    seconds, graphs = {}, {p: {} for p in cfg.precisions}
    with staged_folder(Path(out_dir)) as tmp:
        # bf16 is traced in its fp16 form and converted (see onnx.fp16_to_bf16)
        models = {p: family.for_export(compressed, "fp16" if p == "bf16" else p) for p in traced}
        state = (jobs, models, sample, tmp, cfg)
        done = with_state(_trace_job, state, range(len(jobs)), _trace_workers(compressed, len(jobs)))
        for (precision, spec), took in zip(jobs, tqdm(done, total=len(jobs), desc="export", unit="graph",
                                                      disable=not progress)):
            seconds[f"{spec.name}.{precision}"] = took
            if precision in graphs:
                graphs[precision][spec.name] = {"file": graph_file(spec.name, precision), **spec.io_json()}
        quantization = _quantize(policy, compressed, tmp, specs, quantized, cfg, data, seconds, graphs, progress)
        if "fp32" not in cfg.precisions:
            for spec in specs:  # the graph and its external data, if any
                for f in (graph_file(spec.name, "fp32"), f"{graph_file(spec.name, 'fp32')}.data"):
                    (tmp / f).unlink(missing_ok=True)
        shutil.copyfile(policy.tokenizer.path, tmp / "tokenizer.json")
        statistics = family.statistics_json(policy)
        write_json(tmp / "dataset_statistics.json", statistics)
        decl = family.declarations(policy)  # pipeline, prompt, preprocess, noise, actions, postprocess (+ pi0's own)
        manifest = {"schema": manifest_io.SCHEMA, "created_by": f"vlacompile {__version__}",
                    "model": {"family": family.FAMILY, "preset": policy.cfg.name, "source": policy.source},
                    **provenance,
                    "export": {"exporter": cfg.exporter, "opset": cfg.opset, "torch": torch.__version__,
                               "constant_folding": "polygraphy fold_constants"},
                    **decl, "graphs": graphs,
                    "prompt": {**decl["prompt"], "tokenizer": "tokenizer.json"},
                    "statistics": {"file": "dataset_statistics.json", "keys": sorted(statistics)},
                    "postprocess": {**decl["postprocess"], "statistics": "dataset_statistics.json"},
                    "validation": manifest_io.NOT_VALIDATED}
        if quantization:  # part of schema 2 (docs/CONTRACT.md), covered by the digest like every other key
            manifest["quantization"] = quantization
        manifest_io.seal(tmp, manifest)
    return Exported(Path(out_dir), manifest, seconds)


def _trace_workers(compressed, jobs: int) -> int:
    """Processes that trace and fold the graphs: one per core for a small model (each graph is one
    core's Python for a second or two: six took 9.4 s in one process on 2 cores, 5.7 s in two), none
    for a large one. The graphs are the same bytes either way (tests/export/test_export.py)."""
    return small_model_workers(compressed, jobs)


def _trace_job(state: tuple, k: int) -> float:
    """Trace, fold and write job k's graph into the staging folder; its wall time."""
    import time

    import torch

    jobs, models, sample, folder, cfg = state
    precision, spec = jobs[k]
    start = time.perf_counter()
    args = tuple(torch.from_numpy(sample[t.name]) for t in spec.inputs)
    export_graph(spec.wrapper(models[precision]), args, spec, folder / graph_file(spec.name, precision),
                 cfg.exporter, cfg.opset, bf16=precision == "bf16")
    return time.perf_counter() - start


def _quantize(policy, compressed, folder: Path, specs, precisions, cfg: ExportConfig, data, seconds: dict,
              graphs: dict, progress: bool) -> dict:
    """The int8 / fp8 graphs from the fp32 ones in `folder` (see vlacompile.quant)."""
    import time

    from ..quant import quantize

    if not precisions:
        return {}
    calib, heldout, calib_dir = data
    start = time.perf_counter()
    sources = {s.name: folder / graph_file(s.name, "fp32") for s in specs}
    record = quantize(policy, compressed, sources, folder, precisions, cfg.quant, calib, heldout, calib_dir, progress)
    seconds["quantize"] = time.perf_counter() - start
    for p in precisions:
        graphs[p] = {s.name: {"file": graph_file(s.name, p), **s.io_json()} for s in specs}
    return record


__all__ = ["DEFAULT_DIR", "EXPORTERS", "PRECISIONS", "ExportConfig", "Exported", "GraphSpec", "TensorSpec",
           "export", "graph_file"]
