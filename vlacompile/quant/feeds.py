"""Calibration and evaluation inputs through the real pipeline, and the graphs run in sequence.

Each graph is calibrated on what it sees when deployed: the vision graph on preprocessed calibration
images, the llm graph on the visual tokens the (quantized) vision graph produces from them with
the right-padded prompt ids, the dit graph on the cognition feature the (quantized) llm graph
produces with seeded standard-normal noise (the sampler's own input distribution).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

# Fewest calibration samples per method, from the lowest held-out actions cosine of the int8
# pipeline calibrated on 2, 4, 8, 16 and 32 samples of the embedded default (docs/BENCHMARKS.md,
# "Calibration method"). max and percentile stay within 0.002 of their 32-sample value down to 2
# samples there; a trained model's scenes vary more, so they ask for twice and four times that
# (percentile estimates a tail, max only an extreme). entropy's 2048-bin KL search falls 0.013 below
# its 32-sample value with 2 samples, 0.006 with 4 and 0.0035 with 8: it needs 16, and so does fp8's
# distribution method, also a histogram fit.
MIN_SAMPLES = {"max": 4, "percentile": 8, "entropy": 16, "distribution": 16}


def check_samples(n: int, method: str, calib_dir) -> None:
    need = MIN_SAMPLES[method]
    if n < need:
        raise UserError(f"--calib-data {calib_dir}: {n} calibration samples (the 80% not held out), but {method} "
                        f"calibration needs at least {need}; add samples to {calib_dir} or pick "
                        f"--quant-method max (needs {MIN_SAMPLES['max']})")


def pipeline_inputs(policy, samples, seed: int = 0) -> list[dict]:
    """The first graphs' inputs (pixels, prompt ids, noise) per sample, as numpy."""
    from ..models import export_declaration

    family = export_declaration(policy)
    out = []
    for i, s in enumerate(samples):
        tensors = family.pipeline_inputs(policy, s, policy.noise(seed + i))
        out.append({k: v.numpy() for k, v in tensors.items()})
    return out


def session(path: Path, precision: str):
    """ONNX Runtime over one graph. fp8 graphs run with graph optimizations off: ONNX Runtime's CPU
    provider has float8 QuantizeLinear / DequantizeLinear kernels but no float8 compute, and its
    QDQ optimizer moves a float8 tensor into ops that do not take one. Unoptimized, it simulates
    the graph exactly (same results as ONNX's reference evaluator); it is used here only to carry
    calibration through an fp8 pipeline, never to time or deploy one."""
    import onnxruntime

    from ..backends.onnxruntime import session as make

    if precision != "fp8":
        return make(str(path))
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_graph(sess, tensors: list[dict]) -> list[dict]:
    """Each sample's tensors plus this graph's outputs. A sample whose inputs are the very arrays of
    an earlier one's (one image under several noise draws: confirm.py) reuses that one's outputs, so
    only the graphs the noise reaches run again."""
    names = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    done, out = {}, []
    for t in tensors:
        key = tuple(id(t[n]) for n in names)  # the arrays stay alive in `tensors`: ids stay unique
        if key not in done:
            done[key] = dict(zip(outputs, sess.run(outputs, {n: t[n] for n in names})))
        out.append({**t, **done[key]})
    return out


def graph_feeds(graph: Path, tensors: list[dict]) -> list[dict]:
    """Each sample's inputs of `graph` (read from the graph without its weights)."""
    import onnx

    names = [i.name for i in onnx.load(str(graph), load_external_data=False).graph.input]
    return [{n: t[n] for n in names} for t in tensors]
