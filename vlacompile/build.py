"""`vlacompile build`: calibrate -> rewrite -> export -> (engines) -> validate -> fidelity -> latency
-> closed-loop success.

Every step's artifact is written under a temporary name and renamed, and later steps check hashes,
so an interrupted build never leaves a file that a later step would take as valid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import pipeline
from .engines import EngineConfig
from .export import DEFAULT_DIR, ExportConfig

SUMMARY = "build.json"
REPORT = "report.html"


@dataclass(frozen=True)
class BuildConfig:
    out: Path = DEFAULT_DIR
    export: ExportConfig = field(default_factory=ExportConfig)
    samples: int = 8  # calibration samples that validation compares on
    calib_dir: Path = pipeline.DEFAULT_CALIB
    cache_dir: Path = Path(".vlacompile-cache")
    stored: Path | None = None
    select_layer: int = 2
    latency_runs: int = 10
    force_calibration: bool = False
    backend: str = "onnxruntime"  # what validation and latency run on
    engines: Path = Path("engines")
    engine: EngineConfig = field(default_factory=EngineConfig)  # its precision is set per exported precision
    force: bool = False  # replace `out` even if it holds files vlacompile did not write
    eval_episodes: int = 10  # held-out benchmark episodes per policy (0: no closed-loop check)
    filmstrips: int = 5  # of them, drawn in the report


@dataclass
class BuildResult:
    summary: dict
    validation: object  # compare.validate.Validation

    def __bool__(self) -> bool:
        return bool(self.validation)


def _engines(bc: BuildConfig) -> str:
    """Build every precision's engines where TensorRT and a GPU are present; else say why not."""
    from .engines import build_engines
    from .errors import UserError
    from .runtime import provenance

    try:
        provenance.current()
    except UserError as exc:
        if bc.backend == "tensorrt":
            raise
        return f"skipped: {exc}"
    built = [r for p in bc.export.precisions for r in build_engines(bc.out, bc.engines, replace(bc.engine, precision=p))]
    return f"built {len(built)} engines in {bc.engines}"


def _latency(policy, bc: BuildConfig, sample, runs: int) -> dict:
    import torch

    from .latency import time_calls
    from .models import export_declaration
    from .runtime import GraphPipeline

    family = export_declaration(policy)
    sample, noise = sample.loaded(), policy.noise(0)  # both sides time image + instruction -> actions
    with torch.no_grad():
        out = {"reference (PyTorch eager)": time_calls(
            lambda: family.reference_actions(policy, policy.model, sample, noise), runs=runs)}
    name = {"onnxruntime": "ONNX Runtime", "tensorrt": "TensorRT"}[bc.backend]
    for p in bc.export.precisions:
        if p in ("bf16", "fp8") and bc.backend == "onnxruntime":
            continue  # no CPU kernels (see compare.validate)
        with GraphPipeline(bc.out, p, bc.backend, verify=False, engines=bc.engines) as pipe:
            out[f"compiled {p} ({name})"] = time_calls(
                lambda: pipe.predict_normalized(sample.image, sample.instruction, noise.numpy(),
                                                **family.observation(sample)), runs=runs)
    return out


def _closed_loop(policy, bc: BuildConfig, progress: bool, log) -> dict | None:
    """Success of the reference and of every compiled precision the backend runs, on the same
    held-out episodes with the same noise (a small count: `vlacompile eval` gives the full one)."""
    from . import closed_loop
    from .sim.evaluate import EvalConfig
    from .sim.policies import TorchPolicy
    from .workers import usable_cores

    if not bc.eval_episodes:
        return None
    cfg = EvalConfig(bc.eval_episodes, filmstrips=bc.filmstrips)
    runnable = [p for p in bc.export.precisions if not (p in ("bf16", "fp8") and bc.backend == "onnxruntime")]
    compiled = closed_loop.graph_policies(bc.out, runnable, bc.backend, bc.engines)
    try:
        # the reference's and the fp32 graphs' episodes in one process per core, as `vlacompile eval` runs them
        return closed_loop.run([TorchPolicy(policy), *compiled], cfg, progress, log=log, workers=usable_cores())
    finally:
        for p in compiled:
            p.pipeline.close()


def build(policy, config, bc: BuildConfig, log=print, progress: bool = True) -> BuildResult:
    """The whole build, holding the lock on `bc.out` throughout: a second build into the same folder
    is refused with one line instead of replacing this one's graphs under its validation."""
    from .output import check_replaceable, lock

    with lock(bc.out):
        check_replaceable(bc.out, "graphs", bc.force)  # before the calibration, not after it
        return _build(policy, config, bc, log, progress)


def _build(policy, config, bc: BuildConfig, log, progress: bool) -> BuildResult:
    from .compare.fidelity import fidelity
    from .compare.validate import validate
    from .costs import before_after
    from .data.calib import load_calib, spread
    from .export import export
    from .models import export_declaration
    from .report.summary import about

    start, timings = time.perf_counter(), {}

    def step(name):
        timings[name] = time.perf_counter() - sum(timings.values()) - start

    compiled = pipeline.rewrite(policy, config, bc.calib_dir, bc.cache_dir, bc.stored, bc.select_layer, progress,
                                bc.force_calibration)
    log(f"calibration: {'reused' if compiled.reused else 'computed'} {compiled.calib.path}")
    step("calibrate+rewrite")
    samples = spread(load_calib(bc.calib_dir), bc.samples)
    trace = export_declaration(policy).reference_tensors(policy, compiled.model, samples[0], policy.noise(0))
    exported = export(policy, compiled.model, bc.out, bc.export, trace, compiled.provenance(), progress,
                      data=compiled.quant_data(), force=bc.force)
    log(f"graphs: {exported.folder} ({', '.join(bc.export.precisions)}, {bc.export.exporter} exporter)")
    step("export")
    engines = _engines(bc)
    log(f"engines: {engines}")
    step("engines")
    validation = validate(bc.out, policy, compiled.model, samples, bc.export.precisions, bc.backend, progress,
                          bc.engines, verified=True)  # export just wrote and hashed them
    step("validate")
    fid = fidelity(policy, compiled.model, compiled.heldout)
    step("fidelity")
    latency = _latency(policy, bc, compiled.heldout[0], bc.latency_runs)
    step("latency")
    success = _closed_loop(policy, bc, progress, log)
    step("closed loop")
    ref, new = before_after(policy.cfg, config)
    summary = {"model": policy.source, "about": about(), "compile": config.to_json(),
               "passes": [r.to_json() for r in compiled.records],
               "calibration": {"path": str(compiled.calib.path), "reused": compiled.reused,
                               "dit_similarity": compiled.calib.meta["dit_similarity"]},
               "costs": {"reference": [c.to_json() for c in ref], "compressed": [c.to_json() for c in new]},
               "latency": latency, "parity": validation.to_json(), "fidelity": fid, "engines": engines,
               "quantization": exported.manifest.get("quantization", {}),
               "closed_loop": None if success is None else {k: v for k, v in success.items() if k != "filmstrips"},
               "export_seconds": exported.seconds, "step_seconds": timings,
               "wall_seconds": time.perf_counter() - start}
    _write_summary(bc.out, summary, compiled, (success or {}).get("filmstrips", {}))
    log(f"report: {bc.out / REPORT}")
    return BuildResult(summary, validation)


def _write_summary(folder: Path, summary: dict, compiled, filmstrips: dict) -> None:
    from .fsutil import write_json
    from .report import report_data, write_report
    from .runtime import manifest as manifest_io

    write_json(folder / SUMMARY, summary)
    data = report_data(summary, compiled.calib.meta, compiled.policy, compiled.model, compiled.heldout[0], filmstrips)
    write_report(folder / REPORT, data)
    manifest_io.seal(folder, manifest_io.read(folder), [SUMMARY, REPORT])
