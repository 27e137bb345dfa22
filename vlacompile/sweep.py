"""`vlacompile bench` over several configurations: the speed / fidelity / success trade-off.

One process: each configuration is rewritten (calibration reused), its compiled pipeline built and
timed end to end, its fidelity measured on held-out calibration samples and its closed-loop success
on held-out benchmark episodes; then the reference's success is measured on the same episodes and
the reference is timed once, last (on a GPU timing moves it there in bf16, and fidelity and
success need it as loaded).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .bench import BenchConfig, compiled_pipeline, reference_calls
from .latency import time_calls


def label(config, model_cfg) -> str:
    """"L22 T56 M0.25 C5": LLM layers, visual tokens, MLP sparsity, cache interval; a baseline method
    or pi0's K/V pairing in brackets ("L22[random]", "L12[kv pairing]", "T56[fastv]"), and
    "[unweighted]" for tokens selected without proportional attention when asked for explicitly, and
    "M0.25[expert 0]" where pi0's expert MLPs have their own sparsity; " +map" with the condition map."""
    from .models import compile_counts

    n_layers, n_tokens = compile_counts(model_cfg)
    layers = config.layers.keep if config.layers else n_layers
    tokens = config.tokens.tokens if config.tokens else n_tokens
    mlp = config.mlp.sparsity if config.mlp else 0
    cache = config.cache.interval if config.cache else 1
    layer_notes = [] if not config.layers else [
        *([config.layers.method] if config.layers.method != "importance" else []),
        *([f"{config.layers.pairing} pairing"] if config.layers.pairing != "drop" else [])]
    lm = f"[{', '.join(layer_notes)}]" if layer_notes else ""
    token_notes = [] if not config.tokens else [
        *([config.tokens.method] if config.tokens.method != "efficientvla" else []),
        *(["unweighted"] if config.tokens.weighting == "none" else [])]
    tm = f"[{', '.join(token_notes)}]" if token_notes else ""
    head = config.mlp.head_sparsity if config.mlp else None
    mm = f"[expert {head:g}]" if head is not None else ""
    return f"L{layers}{lm} T{tokens}{tm} M{mlp:g}{mm} C{cache}" + (" +map" if config.condition else "")


def _success(policy, cfg: BenchConfig) -> float | None:
    from .sim.evaluate import EvalConfig, evaluate
    from .workers import usable_cores

    if not cfg.eval_episodes:
        return None
    result = evaluate(policy, EvalConfig(cfg.eval_episodes), progress=False, workers=usable_cores())  # as eval runs it
    return result["summary"]["overall"]["success_rate"]


def _row(policy, compiled, cfg: BenchConfig, sample) -> dict:
    from .compare.fidelity import fidelity
    from .costs import before_after
    from .sim.policies import GraphPolicy

    from .models import export_declaration

    image, noise, observation = sample.load_image(), policy.noise(0), export_declaration(policy).observation(sample)
    with tempfile.TemporaryDirectory(prefix="vlacompile-sweep.") as scratch, \
            compiled_pipeline(policy, compiled, cfg, Path(scratch)) as pipe:
        t = time_calls(lambda: pipe.predict_normalized(image, sample.instruction, noise.numpy(), **observation),
                       cfg.warmup, cfg.runs)
        success = _success(GraphPolicy(pipe), cfg)
    fid = fidelity(policy, compiled.model, compiled.heldout)
    ref, new = before_after(policy.cfg, compiled.config)
    return {"config": label(compiled.config, policy.cfg), "compile": compiled.config.to_json(), "latency": t,
            "flops_share": sum(c.flops for c in new) / sum(c.flops for c in ref),
            "action_cosine": fid["actions"]["overall"]["cosine"], "cognition_cosine": fid["cognition_cosine"],
            "success": success}


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def point_labels(configs: list[str]) -> tuple[list[str], str]:
    """(each config's varying flags without their bracketed notes, what every point shares): the sweep
    plot names a point "L15", not "L15[actions, kv pairing] T128 M0.25[expert 0] C5", whose neighbours'
    full names overlap it. The shared flags and the varying flags' notes go to the title."""
    parts = [re.findall(r"[LTMC][^\s\[]*(?:\[[^\]]*\])?", c) for c in configs]
    varying = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    labels = [" ".join(p[i].split("[")[0] for i in varying) or c for p, c in zip(parts, configs)]
    notes = sorted({p[i][0] + p[i][p[i].index("["):] for p in parts for i in varying if "[" in p[i]})
    shared = " ".join(parts[0][i] for i in range(len(parts[0])) if i not in varying)
    return labels, shared + (f"; where applied, {' '.join(notes)}" if notes else "")


def plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from .fsutil import staged_file

    fig = Figure(figsize=(7.5, 4.5), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    metric = "success" if all(r.get("success") is not None for r in rows) else "action_cosine"
    ax.scatter([r["speedup"] for r in rows], [r[metric] for r in rows], color="#2b6cb0")
    names, shared = point_labels([r["config"] for r in rows])
    # labels alternate above / below in speed order: neighbours overlap
    for k, (r, name) in enumerate(sorted(zip(rows, names), key=lambda x: x[0]["speedup"])):
        ax.annotate(name, (r["speedup"], r[metric]), fontsize=7, xytext=(4, 6 if k % 2 else -11),
                    textcoords="offset points")
    ylabel = "closed-loop success (held-out episodes)" if metric == "success" else "action cosine vs reference (held out)"
    ax.set(xlabel="end-to-end speedup over the eager reference (p50)", ylabel=ylabel)
    ax.set_title("Speed / fidelity (L: LLM layers, T: visual tokens, M: MLP sparsity, C: cache interval)"
                 + (f"\nevery point: {shared}" if shared else ""), fontsize=9)
    with staged_file(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def run_sweep(policy, configs, cfg: BenchConfig, calib_dir, cache_dir, stored, select_layer, out: Path, log=print):
    import torch

    from . import pipeline
    from .cli.options import table
    from .fsutil import write_json, write_text

    rows = []
    for config in configs:  # fidelity needs the reference as loaded (CPU, fp32): before it is timed
        compiled = pipeline.rewrite(policy, config, calib_dir, cache_dir, stored, select_layer, progress=False)
        rows.append(_row(policy, compiled, cfg, compiled.heldout[0]))
        log(f"{rows[-1]['config']}: {rows[-1]['latency']['p50_ms']:.1f} ms, "
            f"action cosine {rows[-1]['action_cosine']:.4f}, success {_pct(rows[-1]['success'])}")
    from .sim.policies import TorchPolicy

    ref_success = _success(TorchPolicy(policy), cfg)
    sample = compiled.heldout[0].loaded()
    dtype = torch.bfloat16 if cfg.device.startswith("cuda") else torch.float32
    reference = reference_calls(policy, sample, policy.noise(0), cfg.device, dtype)
    ref = time_calls(reference["end_to_end"], cfg.warmup, cfg.runs)
    log(f"reference (PyTorch eager, uncompressed, timed last): p50 {ref['p50_ms']:.1f} ms")
    for row in rows:
        row["speedup"] = ref["p50_ms"] / row["latency"]["p50_ms"]
    episodes = f"success ({cfg.eval_episodes} episodes; reference {_pct(ref_success)})"
    headers = ["config", "FLOPs", "p50 ms", "speedup", episodes, "action cosine", "cognition cosine"]
    cells = [[r["config"], f"{r['flops_share']:.1%}", f"{r['latency']['p50_ms']:.1f}", f"{r['speedup']:.2f}x",
              _pct(r["success"]), f"{r['action_cosine']:.4f}", f"{r['cognition_cosine']:.4f}"] for r in rows]
    log(table(headers, cells))
    out = Path(out)
    result = {"model": policy.source, "backend": cfg.backend, "precision": cfg.precision, "device": cfg.device,
              "reference": ref, "reference_success": ref_success, "eval_episodes": cfg.eval_episodes, "rows": rows}
    md = [f"# vlacompile sweep: {policy.source}, {cfg.backend} {cfg.precision} on {cfg.device}", "",
          f"Reference (PyTorch eager, uncompressed): p50 {ref['p50_ms']:.1f} ms.", "",
          "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers), *["| " + " | ".join(c) + " |" for c in cells]]
    return [write_json(out / "sweep.json", result), write_text(out / "sweep.md", "\n".join(md) + "\n"),
            plot(rows, out / "sweep.png")]
