"""What a build says at a glance: where and when it ran, its headline numbers and verdicts, and the
warnings its numbers call for. Plain data from build.json's content, shared by the report's top and
`vlacompile build`'s summary.

`facts(summary)` is a list of (label, text) rows and `warnings(summary)` a list of (level, text), so a
new measurement (closed-loop success, say) is one more row and one more check here.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

# Below these, held-out fidelity is called poor. Cosines of whole 16x7 action chunks and of the
# cognition feature between the compressed and the reference model, same inputs and noise. They are
# not pass/fail gates: only closed-loop success says whether a difference matters, but a compressed
# policy whose chunks point elsewhere this often needs that check before it goes near a robot.
POOR_ACTIONS_COSINE = 0.9
POOR_COGNITION_COSINE = 0.95
# A DiT block output reused at a step whose calibrated cosine with the step before is below this
# changed between those steps; reusing it there approximates a moving target.
CACHE_MIN_SIMILARITY = 0.9
# Closed-loop success: a compiled policy this many points below the reference on the same episodes,
# or a reference that fails this often, is worth a full `vlacompile eval` before any robot sees it.
SUCCESS_DROP = 0.10
WEAK_REFERENCE = 0.5

REFERENCE = "reference (PyTorch eager)"


def revision() -> str:
    """The code this build ran: the git commit of the vlacompile checkout (marked when it has local
    changes), else the installed version."""
    from .. import __version__

    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return f"vlacompile {__version__}"
    if sha.returncode != 0:
        return f"vlacompile {__version__}"
    return f"vlacompile {__version__}, git {sha.stdout.strip()}{' with local changes' if dirty.stdout.strip() else ''}"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import torch

    return {"host": platform.node(), "os": platform.platform(terse=True), "cpu": _cpu(), "cores": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def about() -> dict:
    """build.json's "about" entry, recorded when the build runs."""
    return {"revision": revision(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine()}


def flags(compile_config: dict) -> str:
    """The compile config as the command-line flags that give it."""
    c = compile_config
    tokens = c.get("tokens") or {}
    parts = [f"--layers {c['layers']['keep']}" if c.get("layers") else "no layer drop",
             f"--tokens {tokens['tokens']} ({tokens['method']}, before layer {tokens['layer']})" if tokens
             else "no token selection",
             f"--mlp-sparsity {c['mlp']['sparsity']}" if c.get("mlp") else "no MLP pruning",
             *([f"--expert-mlp-sparsity {c['mlp']['head_sparsity']}"]
               if (c.get("mlp") or {}).get("head_sparsity") is not None else []),
             f"--cache-interval {c['cache']['interval']}" if c.get("cache") else "no action-head cache",
             *([f"--condition-map ({c['condition']['data']} data)"] if c.get("condition") else [])]
    return ", ".join(parts)


def pass_record(summary: dict, name: str) -> dict | None:
    """build.json's record of the pass `name` (passes/record.py), None when it did not run."""
    return next((p for p in summary.get("passes", []) if p["name"] == name), None)


def condition_map_text(summary: dict) -> str | None:
    """The condition map's fit: on what, what it gave on held-out frames, or why it was not installed."""
    record = pass_record(summary, "condition_map")
    if record is None:
        return None
    ch = record["changes"]
    cos, err = ch["heldout_cosine"], ch["heldout_error"]
    fitted = f"fitted on {ch['fit_samples']} of the {ch['source']}"
    if not ch["installed"]:
        return (f"not installed: no ridge beat the identity on {ch['heldout_samples']} held-out frames "
                f"(relative error {err['before']:.4f}); {fitted}")
    return (f"on {ch['heldout_samples']} held-out frames, cognition relative error {err['before']:.4f} -> "
            f"{err['after']:.4f}, cosine {cos['before']:.4f} -> {cos['after']:.4f} (ridge {ch['ridge']:g}); {fitted}")


def headline_latency(summary: dict) -> str:
    lat = summary["latency"]
    base = lat[REFERENCE]["p50_ms"]
    compiled = {k.removeprefix("compiled "): v["p50_ms"] for k, v in lat.items() if k != REFERENCE}
    if not compiled:
        return f"{base:.1f} ms p50 (PyTorch eager); no compiled pipeline timed here"
    best = min(compiled, key=compiled.get)
    return (f"{compiled[best]:.1f} ms p50 with {best}, {base / compiled[best]:.2f}x the PyTorch eager reference "
            f"({base:.1f} ms)")


def parity_verdict(parity: dict) -> str:
    checked = [p["precision"] for p in parity["pipelines"]]
    samples = max((p["samples"] for p in parity["pipelines"]), default=0)
    what = f"{', '.join(checked)} pipelines and graphs on {samples} samples" if checked else "nothing checked"
    if not parity["passed"]:
        return f"FAILED ({what})"
    if any(p.get("average_only") for p in parity["graphs"] + parity["pipelines"]):
        return f"passed on average only ({what}; see the warnings)"
    return f"passed ({what})"


def fidelity_verdict(fid: dict) -> str:
    actions, cognition = fid["actions"]["overall"]["cosine"], fid["cognition_cosine"]
    poor = actions < POOR_ACTIONS_COSINE or cognition < POOR_COGNITION_COSINE
    return (f"{'poor' if poor else 'good'}: held-out actions cosine {actions:.3f} (poor below {POOR_ACTIONS_COSINE}), "
            f"{fid.get('feature', 'cognition')} cosine {cognition:.3f} (poor below {POOR_COGNITION_COSINE}), "
            f"{fid['samples']} samples")


def facts(summary: dict) -> list[tuple[str, str]]:
    """The report's summary rows."""
    about_ = summary.get("about", {})
    m = about_.get("machine", {})
    machine_text = (f"{m.get('host', '?')}: {m.get('cpu', '?')}, {m.get('cores', '?')} cores"
                    f"{', ' + m['gpu'] if m.get('gpu') else ', no GPU'}; {m.get('os', '')}").rstrip("; ")
    return [("model", str(summary["model"])), ("compile flags", flags(summary["compile"])),
            ("code revision", about_.get("revision", "not recorded")), ("date", about_.get("date", "not recorded")),
            ("machine", machine_text), ("latency", headline_latency(summary)),
            ("parity with PyTorch", parity_verdict(summary["parity"])),
            *([("condition map", mapped)] if (mapped := condition_map_text(summary)) else []),
            ("fidelity", fidelity_verdict(summary["fidelity"])),
            *([("closed-loop success", success_verdict(summary["closed_loop"]))] if summary.get("closed_loop") else []),
            *([("quantization", quantization_text(summary["quantization"]))] if summary.get("quantization") else [])]


def quantization_text(quantization: dict) -> str:
    """Per quantized precision: the groups its recipe quantizes, the calibration, and the recipe's
    lowest held-out actions cosine against the fp32 graphs (the manifest's `quantization`)."""
    parts = []
    for precision, q in quantization.items():
        groups = [g for g, r in (q["evidence"].get("groups") or {}).items() if r.get("nodes")]
        chosen = q["recipe"]["quantize"]
        what = (f"{len(chosen)} of {len(groups)} groups quantized" if groups else
                f"{', '.join(chosen)} quantized by a {q['recipe'].get('source', 'given')} recipe")
        kept = len(q["recipe"].get("keep_float", []))
        what += f" ({kept} of their modules kept float)" if kept else ""
        dropped = [s["dropped"] for s in (q["evidence"].get("confirm") or {}).get("steps", [])
                   if "dropped" in s and s["dropped"] not in chosen]  # not those put back
        if dropped:
            what += f" ({', '.join(dropped)} dropped: with it the pipeline gate failed on a calibration image)"
        measured = q["evidence"].get("recipe")
        cosine = f", held-out actions cosine {measured['min_cosine']:.4f} against fp32" if measured else ""
        parts.append(f"{precision}: {what}, {q['method']} calibration on {q['calibration']['samples']} samples{cosine}")
    return "; ".join(parts)


def success_rates(loop: dict) -> dict[str, dict]:
    """policy name -> its overall summary, the reference first."""
    return {name: p["summary"]["overall"] for name, p in loop["policies"].items()}


def success_verdict(loop: dict) -> str:
    rates = success_rates(loop)
    n = next(iter(rates.values()))["episodes"]
    text = ", ".join(f"{name} {r['success_rate']:.0%}" for name, r in rates.items())
    return f"{text} on the same {n} held-out episodes (95% intervals below; `vlacompile eval` for 100+)"


def _parity_warnings(parity: dict) -> list[tuple[str, str]]:
    out = []
    for p in parity["graphs"] + parity["pipelines"]:
        for o in p["outputs"]:
            where = f"{p['graph']} {p['precision']} {o['name']}"
            if not o["passed"]:
                out.append(("error", f"parity FAILED for {where}: {o['used']:.0%} of the gate ({o['tolerance']}), "
                                     f"cosine {o['cosine']:.6f}"))
            elif o.get("average_only"):
                out.append(("warning", f"{where} passes parity only on average over {p['samples']} samples: "
                                       f"{o['worst_sample_name']} alone uses {o['worst_used']:.0%} of the gate "
                                       f"({o['tolerance']})"))
    return out


def _fidelity_warnings(fid: dict) -> list[tuple[str, str]]:
    actions, cognition = fid["actions"]["overall"]["cosine"], fid["cognition_cosine"]
    if actions >= POOR_ACTIONS_COSINE and cognition >= POOR_COGNITION_COSINE:
        return []
    return [("warning", f"poor fidelity on held-out episodes: actions cosine {actions:.3f} and "
                        f"{fid.get('feature', 'cognition')} cosine "
                        f"{cognition:.3f} against the uncompressed model (poor below {POOR_ACTIONS_COSINE} / "
                        f"{POOR_COGNITION_COSINE}); check closed-loop success, or compress less")]


def reused_low_similarity(similarity: dict, computing_steps: list[int]) -> list[tuple[int, str, int, float]]:
    """(block, branch, step, cosine) for every step that reuses a cached output although its
    calibrated cosine with the step before is under CACHE_MIN_SIMILARITY."""
    out = []
    for branch in ("attn", "mlp"):
        for block, per_step in enumerate(similarity.get(branch, [])):
            for s, cosine in enumerate(per_step, start=1):  # per_step[s - 1] = cos(step s, step s - 1)
                if s not in computing_steps and cosine < CACHE_MIN_SIMILARITY:
                    out.append((block, branch, s, cosine))
    return out


def _cache_warnings(summary: dict) -> list[tuple[str, str]]:
    cache = (summary["compile"].get("cache") or {})
    similarity = summary.get("calibration", {}).get("dit_similarity")
    if not cache or not similarity:
        return []
    record = pass_record(summary, "cache") or {}
    computing = record.get("changes", {}).get("computing_steps", [])
    low = reused_low_similarity(similarity, computing)
    if not low:
        return []
    steps = range(1, len(similarity["attn"][0]) + 1)
    reused = 2 * len(similarity["attn"]) * len([s for s in steps if s not in computing])
    worst = sorted(low, key=lambda x: x[3])[:3]
    unit = similarity.get("unit", "block")
    names = ", ".join(f"{unit} {b} {'attention' if k == 'attn' else 'MLP'} at step {s} ({c:+.2f})" for b, k, s, c in worst)
    return [("warning", f"the cache interval {cache['interval']} reuses action-head (DiT / expert) outputs where "
                        f"consecutive steps differ: {len(low)} of {reused} reused {unit} outputs have a calibrated cross-step "
                        f"cosine below {CACHE_MIN_SIMILARITY}, lowest {names}; try a shorter --cache-interval")]


def _success_warnings(loop: dict | None) -> list[tuple[str, str]]:
    if not loop:
        return []
    rates = success_rates(loop)
    ref_name = next(iter(rates))
    ref, out = rates.pop(ref_name), []
    n = ref["episodes"]
    if ref["success_rate"] < WEAK_REFERENCE:
        out.append(("warning", f"the uncompressed policy itself succeeds on only {ref['success_rate']:.0%} of {n} "
                               "held-out episodes: what compression keeps is a weak policy"))
    for name, r in rates.items():
        drop = ref["success_rate"] - r["success_rate"]
        if drop > SUCCESS_DROP:
            out.append(("warning", f"{name} succeeds on {r['success_rate']:.0%} of {n} held-out episodes against "
                                   f"{ref['success_rate']:.0%} for the reference: measure it with `vlacompile eval "
                                   "--graphs ... --episodes 100` and compress less if the gap stays"))
    return out


def warnings(summary: dict) -> list[tuple[str, str]]:
    """(level, text) for everything in the build's numbers that a user should look at: "error"
    (something failed) or "warning" (it passed, but not comfortably)."""
    return (_parity_warnings(summary["parity"]) + _fidelity_warnings(summary["fidelity"]) + _cache_warnings(summary)
            + _success_warnings(summary.get("closed_loop")))
