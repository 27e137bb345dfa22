"""Parity of graphs against the PyTorch rewritten model, with Polygraphy's comparator.

The reference is always the float32 PyTorch model; tolerances depend on the graph's precision:
- fp32: every element of every sample within atol or rtol (Polygraphy's "elemwise"), and
  cosine >= 0.9999 on every sample;
- fp16: the mean absolute error, averaged over the samples, <= 0.01 (Polygraphy's "mean" with
  --check-average), and cosine >= 0.999 on every sample: the GR00T deployment gates for a
  reduced-precision backbone (field-notes §3). Averaging matters: at half precision a near-tie in
  the static top-k can swap a visual token or two on some sample (seen on 1 of 8 calibration samples
  of the embedded default: L1 0.036, cosine 0.99909), which is a property of fp16, not a broken graph.
- bf16: the same gates as fp16 (GR00T's BF16 backbone gates); ONNX Runtime has no CPU bf16 kernels,
  so bf16 parity runs on a device (`--backend tensorrt`).
- int8: cosine >= 0.99 on every sample for every graph and end to end, and the mean absolute error,
  averaged over samples, <= 0.05. The cosine gate is GR00T's published FP8 backbone gate, applied to
  the actions too (GR00T allows FP8 actions 0.98): per-channel int8 weights keep 7 bits inside each
  channel's range against E4M3's 3, so int8 is held to the stricter one. 0.05 is GR00T's actions L1
  gate, in normalized action units ([-1, 1]); the graphs' other outputs (visual tokens, the
  final-normed cognition feature) are of order 1 too. Measured on the embedded default: cosine
  0.9978-0.9993 and mean abs 0.005-0.025 (docs/BENCHMARKS.md), so the gates leave room for another
  checkpoint's calibration without passing a broken graph (a wrong scale gives cosine << 0.9).
- fp8: GR00T's FP8 gates as published: cosine >= 0.99 for the backbone graphs, >= 0.98 for the
  actions; mean absolute error as int8. Checked on TensorRT (ONNX Runtime's CPU provider has no fp8).
Intermediate tensors (fault localization) have no per-sample averaging; they pass with the cosine
gate and a max error within `atol + tensor_rtol * max |reference|`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .localize import Fault, tensor_error


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    stat: str  # Polygraphy's check_error_stat
    average: bool  # Polygraphy's check_average: the stat averaged over samples
    min_cosine: float
    tensor_rtol: float
    actions_cosine: float | None = None  # a lower gate for the actions output (GR00T's FP8 gates)

    def cosine_for(self, output: str) -> float:
        return self.actions_cosine if output == "actions" and self.actions_cosine is not None else self.min_cosine

    def polygraphy_args(self) -> str:
        average = " --check-average" if self.average else ""
        return f"--atol {self.atol:g} --rtol {self.rtol:g} --check-error-stat {self.stat}{average}"


TOLERANCES = {"fp32": Tolerance(1e-3, 1e-3, "elemwise", False, 0.9999, 1e-3),
              "fp16": Tolerance(1e-2, 1e-2, "mean", True, 0.999, 5e-2),
              "bf16": Tolerance(1e-2, 1e-2, "mean", True, 0.999, 5e-2),  # GR00T's BF16 gates
              "int8": Tolerance(5e-2, 5e-2, "mean", True, 0.99, 2e-1),
              "fp8": Tolerance(5e-2, 5e-2, "mean", True, 0.99, 2e-1, actions_cosine=0.98)}


@dataclass
class OutputParity:
    name: str
    max_abs: float
    mean_abs: float
    cosine: float  # the lowest over samples
    passed: bool


@dataclass
class Parity:
    """One graph (or the whole pipeline) at one precision; truthy when every output passes."""

    graph: str
    precision: str
    samples: int
    outputs: list[OutputParity]
    fault: Fault | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("fault", "extra")}
        return {**out, "passed": bool(self), "fault": None if self.fault is None else asdict(self.fault), **self.extra}


def as_run_results(name: str, outputs: list[dict]):
    from polygraphy.comparator import IterationResult, RunResults

    results = RunResults()
    results.append((name, [IterationResult(dict(o), runner_name=name) for o in outputs]))
    return results


def compare(got, want, tol: Tolerance) -> list[OutputParity]:
    """got, want: RunResults of one runner each, same iterations. Polygraphy decides pass/fail by
    `tol`'s atol/rtol/stat; the cosine gate is ours (Polygraphy's simple check has none)."""
    from polygraphy.comparator import Comparator, RunResults
    from polygraphy.comparator.compare import SimpleCompareFunc

    results = RunResults([*got, *want])
    func = SimpleCompareFunc(atol=tol.atol, rtol=tol.rtol, check_error_stat=tol.stat)
    accuracy = Comparator.compare_accuracy(results, compare_func=func, check_average=tol.average)
    per_iteration = next(iter(accuracy[0].values()))  # one compare function, one (got, want) pair
    out = []
    for name in per_iteration[0]:
        stats = [it[name] for it in per_iteration]
        cosine = min(tensor_error(g[name], w[name])[1] for g, w in zip(got[0][1], want[0][1]))
        # Polygraphy's verdict covers every output of the graph at once (ours have one each).
        out.append(OutputParity(name, float(max(s.max_absdiff for s in stats)),
                                float(np.mean([s.mean_absdiff for s in stats])), cosine,
                                bool(accuracy) and cosine >= tol.cosine_for(name)))
    return out
