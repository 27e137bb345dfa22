"""Parity of graphs against the PyTorch rewritten model, with Polygraphy's comparator.

The reference is always the float32 PyTorch model; tolerances depend on the graph's precision:
- fp32: every element of every sample within atol or rtol (Polygraphy's "elemwise"), and
  cosine >= 0.9999 on every sample;
- fp16: the mean absolute error, averaged over the samples, <= 0.01 (Polygraphy's "mean" with
  --check-average), and cosine >= 0.999 on every sample: the GR00T deployment gates for a
  reduced-precision backbone (field-notes §3). A pass that holds only on the average (one sample
  alone over the gate) is reported as such: `OutputParity.average_only`.
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

import warnings
from contextlib import contextmanager
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

    def cosine_for(self, output: str | None) -> float:
        return self.actions_cosine if output == "actions" and self.actions_cosine is not None else self.min_cosine

    def describe(self) -> str:
        """The gate in words, for tables."""
        stat = ("every element" if self.stat == "elemwise" else
                f"{self.stat} error{', averaged over samples' if self.average else ' of each sample'}")
        actions = f" ({self.actions_cosine:g} for the actions)" if self.actions_cosine is not None else ""
        return f"{stat} <= {self.atol:g} abs or {self.rtol:g} rel; cosine >= {self.min_cosine:g}{actions}"

    def short(self, output: str | None = None) -> str:
        """The gate of one output (`output` None: the backbone's)."""
        stat = "each element" if self.stat == "elemwise" else f"{self.stat}{' (avg)' if self.average else ''}"
        return f"{stat} {self.atol:g}, cos {self.cosine_for(output):g}"

    def used(self, abs_err: float, rel_err: float) -> float:
        """Fraction of the error gate an (abs, rel) pair uses: Polygraphy passes when either is
        within its tolerance, so the smaller fraction decides. 1.0 is the edge of the gate."""
        return min(abs_err / self.atol, rel_err / self.rtol)

    def cosine_used(self, cosine: float, output: str | None = None) -> float:
        return (1.0 - cosine) / (1.0 - self.cosine_for(output))

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
    """One output's errors over the samples. `used` is the fraction of the error gate that decides
    the verdict (the average for an averaged gate, else the worst sample); `worst_used` the worst
    single sample's fraction, measured by the same statistic; `margin` what is left of the tighter
    of the error and cosine gates (negative: over the gate)."""

    name: str
    max_abs: float
    mean_abs: float
    cosine: float  # the lowest over samples
    passed: bool
    tolerance: str = ""
    used: float = 0.0
    worst_used: float = 0.0
    worst_sample: int = 0
    margin: float = 1.0

    @property
    def average_only(self) -> bool:
        """Passes, but only because the gate averages: the worst sample alone is over it."""
        return self.passed and self.worst_used > 1.0

    def verdict(self, names: list[str] | None = None) -> str:
        if not self.passed:
            return "FAIL"
        if self.average_only:
            return f"pass on average only ({sample_name(self.worst_sample, names)} alone fails)"
        return "pass"


def sample_name(index: int, names: list[str] | None = None) -> str:
    return names[index] if names and index < len(names) else f"sample {index}"


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
    sample_names: list[str] = field(default_factory=list)  # what each sample was (image file names)

    def __bool__(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def average_only(self) -> bool:
        return bool(self) and any(o.average_only for o in self.outputs)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("fault", "extra", "outputs")}
        outputs = [{**asdict(o), "average_only": o.average_only, "verdict": o.verdict(self.sample_names),
                    "worst_sample_name": sample_name(o.worst_sample, self.sample_names)} for o in self.outputs]
        return {**out, "outputs": outputs, "passed": bool(self), "average_only": self.average_only,
                "fault": None if self.fault is None else asdict(self.fault), **self.extra}


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
    with warnings.catch_warnings():
        # Polygraphy's relative error divides by the expected values: pi0's validity masks (bool,
        # mostly False) make 0 / 0. The absolute error still decides, and is 0 where they match.
        warnings.simplefilter("ignore", RuntimeWarning)
        with _unlogged_stats():
            accuracy = Comparator.compare_accuracy(results, compare_func=func, check_average=tol.average)
    pair, per_iteration = next(iter(accuracy[0].items()))  # one compare function, one (got, want) pair
    averaged = accuracy[0].average_results(pair) if tol.average else {}
    out = []
    for name in per_iteration[0]:
        stats = [it[name] for it in per_iteration]
        pairs = [(g[name], w[name]) for g, w in zip(got[0][1], want[0][1])]
        cosine = min(tensor_error(g, w)[1] for g, w in pairs)
        per_sample = [_sample_used(g, w, s, tol) for (g, w), s in zip(pairs, stats)]
        if tol.average:  # what Polygraphy's --check-average thresholds: each statistic averaged
            used = tol.used(*(float(np.mean([getattr(s, f"{tol.stat}_{k}diff") for s in stats])) for k in ("abs", "rel")))
        else:
            used = max(per_sample)
        worst = int(np.argmax(per_sample))
        # Polygraphy's own verdict for this output (its overall one covers every output at once:
        # one failing K/V entry of pi0's prefix would fail the validity masks beside it)
        passed = bool(averaged[name]) if tol.average else all(bool(s) for s in stats)
        out.append(OutputParity(name, float(max(s.max_absdiff for s in stats)),
                                float(np.mean([s.mean_absdiff for s in stats])), cosine,
                                passed and cosine >= tol.cosine_for(name), tol.short(name), used,
                                per_sample[worst], worst, 1.0 - max(used, tol.cosine_used(cosine, name))))
    return out


@contextmanager
def _unlogged_stats():
    """Polygraphy formats each output's statistics (mean, median, quantiles of the values and of
    both differences) for its INFO log before the logger drops them: a third of the int8 recipe's
    search, which compares 480 pipelines per candidate, went there. While INFO is off, nothing is
    formatted; the comparison itself, and its verdict, are untouched."""
    from polygraphy.comparator import util as comp_util
    from polygraphy.logger import G_LOGGER

    if G_LOGGER.module_severity.get() <= G_LOGGER.INFO:
        yield
        return
    saved = comp_util.log_output_stats
    comp_util.log_output_stats = lambda *args, **kwargs: None
    try:
        yield
    finally:
        comp_util.log_output_stats = saved


def _sample_used(got: np.ndarray, want: np.ndarray, stats, tol: Tolerance) -> float:
    """One sample's fraction of the error gate, by the gate's own statistic."""
    if tol.stat != "elemwise":
        return tol.used(getattr(stats, f"{tol.stat}_absdiff"), getattr(stats, f"{tol.stat}_reldiff"))
    want64 = np.asarray(want, np.float64)
    absdiff = np.abs(np.asarray(got, np.float64) - want64)
    reldiff = absdiff / np.where(want64 == 0, 2.220446049250313e-16, np.abs(want64))  # Polygraphy's epsilon
    return float(np.max(np.minimum(absdiff / tol.atol, reldiff / tol.rtol))) if absdiff.size else 0.0


PARITY_HEADERS = ["graph", "precision", "output", "tolerance", "max abs", "mean abs", "cosine", "used",
                  "worst sample", "margin", "parity"]


def _folded(outputs: list[dict], fold: int | None) -> list[dict]:
    """A graph's outputs, those that pass folded into their worst one when there are more than
    `fold` (pi0's prefix graph returns a K/V pair per expert layer); failures always show."""
    if fold is None or len(outputs) <= fold:
        return outputs
    passing = [o for o in outputs if o["passed"]]
    failing = [o for o in outputs if not o["passed"]]
    if not passing:
        return failing
    worst = max(passing, key=lambda o: o["used"])
    return failing + [{**worst, "name": f"{len(passing)} outputs pass, worst {worst['name']}"}]


def parity_rows(parity: dict, fold: int | None = None) -> list[list[str]]:
    """One row per graph output, from Validation.to_json(): errors, the gate, how much of it the
    deciding statistic uses, the worst single sample's use of it, and the margin left. `fold`: a
    graph with more outputs than that shows its passing ones as one row, their worst."""
    rows = []
    for p in parity["graphs"] + parity["pipelines"]:
        for o in _folded(p["outputs"], fold):
            rows.append([p["graph"], p["precision"], o["name"], o["tolerance"], f"{o['max_abs']:.2e}",
                         f"{o['mean_abs']:.2e}", f"{o['cosine']:.6f}", f"{o['used']:.0%}",
                         f"{o['worst_used']:.0%} {o['worst_sample_name']}", f"{o['margin']:.0%}", o["verdict"]])
    return rows
