"""One self-contained HTML file: a summary with the warnings first, then each plot with what to look
for in it, the tables, and the JSON they came from (embedded, not shown)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from ..compare.parity import PARITY_HEADERS, parity_rows
from ..fsutil import write_text
from . import figures

# One sentence per figure: what a reader should check in it.
LOOK_FOR = {
    "layers": "The red bars, the dropped layers, should be the shortest: a dropped layer as tall as the kept "
              "ones was changing its input, and dropping it costs fidelity. A hatched, starred layer is the "
              "exception: nothing reads its output, so dropping it costs nothing. With --layer-method actions, "
              "a second panel shows what decided instead: each bar is how far the calibration actions had "
              "moved once that layer, and every one left of it, was dropped; a tall red bar in the first panel "
              "is a layer Eq. 1 would have kept.",
    "tokens": "The outlined patches should cover what the instruction is about; boxes mostly on empty table or "
              "wall mean the relevance scoring missed the task's objects. A number is how many visual tokens a "
              "kept one stands for in later layers' attention: the large ones should sit on plain table or wall.",
    "dit": "Steps between two dotted lines reuse the last computed output, so their curves should stay near 1; a "
           "dip there means the cache interval is too long for that block.",
    "costs": "FLOPs should fall where the passes act (the LLM and the action head); the latency bars show how "
             "much of that saving reached the wall clock on this machine.",
    "quantization": "Each bar is one group quantized alone: the groups under the dashed error budget are quantized "
                    "(blue), those over it, or whose graph then fails its own parity gate, or with which the "
                    "recipe fails the pipeline's gate on some calibration image (the table says which), "
                    "stay float (red); an outlined bar is a group over the budget that joins "
                    "with its most damaging GEMMs float (the filled bar: what the rest of it costs); the dotted "
                    "line, the recipe measured as a whole, should stay under the budget too.",
    "filmstrip": "Each row is one held-out episode, left to right in time: the gripper should go to the object the "
                 "instruction names, not to its look-alike; a failed row shows where the policy went wrong.",
}

STYLE = ("body{font-family:sans-serif;max-width:1040px;margin:2em auto;color:#1a202c}"
         "table{border-collapse:collapse;margin:.5em 0;font-size:13px}"
         "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}"
         "table.facts{font-size:15px}table.facts td,table.facts th{text-align:left;white-space:normal}"
         "table.facts th{background:#f7fafc;width:11em}"
         "img{max-width:100%}p.look{color:#4a5568;margin:.2em 0 1.5em}"
         ".warning,.error{padding:.4em .8em;margin:.3em 0;border-left:4px solid}"
         ".warning{background:#fffaf0;border-color:#dd6b20}.error{background:#fff5f5;border-color:#e53e3e}"
         ".ok{background:#f0fff4;border-left:4px solid #38a169;padding:.4em .8em}")


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def plots(data: dict) -> dict:
    """name -> Figure, for the HTML and for anyone who wants the PNGs."""
    out = {"layers": figures.layer_importance(data["layers"]["importance"], data["layers"]["dropped"],
                                               data["layers"]["free"], data["layers"].get("search")),
           "dit": figures.dit_similarity(data["dit"]["similarity"], data["dit"]["computing_steps"],
                                         data["dit"]["interval"]),
           "costs": figures.reference_vs_compiled(data["costs"], data["latency"])}
    if data["tokens"]["kept"]:
        out["tokens"] = figures.kept_tokens(data["_image"], data["tokens"]["grid"], data["tokens"]["kept"],
                                            data["tokens"].get("stands_for"))
    if data.get("_filmstrip"):
        out["filmstrip"] = figures.filmstrip(data["_filmstrip"])
    if data.get("quantization"):
        out["quantization"] = figures.quant_sensitivity(data["quantization"])
    return out


def _kept_float(quantization: dict) -> str:
    """The modules a recipe keeps float inside quantized groups, one line per precision."""
    lines = [f"<p><b>{p}, kept float inside quantized groups:</b> "
             f"{', '.join(f'<code>{html.escape(m)}</code>' for m in q['recipe']['keep_float'])}</p>"
             for p, q in quantization.items() if q["recipe"].get("keep_float")]
    return "".join(lines)


def _quant_rows(quantization: dict) -> list[list]:
    rows = []
    for precision, q in quantization.items():
        ev = q["evidence"]
        confirm = ev.get("confirm") or {"steps": []}  # quant/confirm.py: each step's recipe, lowest cosine
        steps, chosen = confirm["steps"], q["recipe"]["quantize"]
        # removed and not put back: the lowest cosine of the recipe with it (put back, where tried)
        dropped = {s["dropped"]: prev["min_cosine"] for prev, s in zip(steps, steps[1:])}
        dropped.update({r["restored"]: r["min_cosine"] for r in confirm.get("restores", [])})
        dropped = {g: c for g, c in dropped.items() if g not in chosen}
        for group, r in ev.get("groups", {}).items():
            state = ("quantized" if group in chosen else "float") if r.get("nodes") else "absent"
            if state == "quantized" and r.get("keep_float"):  # refined GEMM by GEMM (quant/sensitivity.py)
                state = f"quantized, {len(r['keep_float'])} of {r['nodes']} GEMMs float (below)"
            gate = r.get("graph_gate") or {}
            if group in dropped:
                state = (f"float: with it the recipe failed the pipeline gate on {confirm['samples']} inputs "
                         f"(lowest cosine {dropped[group]:.4f})")
            elif state == "float" and not gate.get("passed", True):
                state = f"float: {gate['output']} at {gate['used']:.0%} of its gate"
            cos = f"{r['min_cosine']:.6f}" if "min_cosine" in r else ""
            rows.append([precision, group, r.get("graph") or "", r.get("nodes", 0), cos, state])
        for name in ("recipe", "all"):
            if name in ev:
                rows.append([precision, f"[{name}]", "", "", f"{ev[name]['min_cosine']:.6f}", ""])
        if steps:
            final = confirm["final"]
            rows.append([precision, f"[recipe: {confirm['samples'] // confirm['draws']} images x {confirm['draws']} "
                                    "noise draws]", "", "", f"{final['min_cosine']:.6f}",
                         "passes the pipeline gate" if final["passed"] else "fails the pipeline gate"])
    return rows


def _closed_loop(data: dict, section) -> str:
    """Success per policy and family on the same held-out episodes, and what the robot did."""
    from ..closed_loop import protocol, table

    result = data.get("closed_loop")
    if not result:
        return ""
    headers, rows = table(result)
    return "\n".join([
        "<h2>Closed-loop success on held-out episodes</h2>",
        f"<p>{html.escape(protocol(result['config']))}. <code>vlacompile eval</code> runs the full count.</p>",
        _table(headers, rows),
        section("What the compiled policy did (camera frames at re-plans, step number in the corner)", "filmstrip")])


def _fidelity_rows(fid: dict) -> list[list]:
    rows = [[f"{fid.get('feature', 'cognition')} feature", f"{fid['cognition_cosine']:.4f}", "", ""]]
    rows.append(["actions, all", *(f"{fid['actions']['overall'][k]:.4f}" for k in ("cosine", "l1", "linf"))])
    rows += [[f"actions, {d}", *(f"{m[k]:.4f}" for k in ("cosine", "l1", "linf"))]
             for d, m in fid["actions"]["per_dim"].items()]
    return rows


def _summary(data: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in data["facts"])
    facts = f"<table class='facts'>{rows}</table>"
    notes = "".join(f"<p class='{level}'><b>{level}:</b> {html.escape(text)}</p>" for level, text in data["warnings"])
    return "<h2>Summary</h2>" + facts + (notes or "<p class='ok'>No warnings: every check passed with margin.</p>")


def render(data: dict) -> str:
    images = {name: _png(fig) for name, fig in plots(data).items()}

    def section(title: str, name: str) -> str:
        if name not in images:
            return ""
        return (f"<h2>{title}</h2><img id='{name}' src='data:image/png;base64,{images[name]}'>"
                f"<p class='look'><b>What to look for:</b> {html.escape(LOOK_FOR[name])}</p>")

    payload = json.dumps({k: v for k, v in data.items() if not k.startswith("_")})
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'><title>vlacompile build report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>vlacompile build report: {html.escape(str(data['model']))}</h1>",
        _summary(data),
        section("Layer importance and the dropped layers", "layers"),
        section(f"Kept visual tokens on {html.escape(Path(data['tokens']['image']).name)}: "
                f"&ldquo;{html.escape(data['tokens']['instruction'])}&rdquo;", "tokens"),
        section("Action-head (DiT / expert) cross-step similarity and the cache", "dit"),
        "<h2>Parity with the PyTorch rewritten model</h2>",
        "<p class='look'><b>What to look for:</b> the margin column: how much of the tighter gate (error or "
        "cosine) is left; &ldquo;used&rdquo; is what the gate decides on (the average for averaged gates) and "
        "&ldquo;worst sample&rdquo; the single sample that uses most of it. A graph with many outputs (pi0's "
        "K/V cache) shows its passing ones as their worst; build.json lists every one.</p>",
        _table(PARITY_HEADERS, parity_rows(data["parity"], fold=4)),
        _closed_loop(data, section),
        "<h2>Fidelity against the uncompressed reference (held-out episodes)</h2>",
        _table(["what", "cosine", "L1", "Linf"], _fidelity_rows(data["fidelity"])),
        section("Quantization: sensitivity per group and the recipe", "quantization"),
        (_table(["precision", "group", "graph", "GEMMs", "lowest actions cosine (held out)", "recipe"],
                _quant_rows(data["quantization"])) + _kept_float(data["quantization"])
         if data.get("quantization") else ""),
        section("Reference against compiled", "costs"),
        f"<script type='application/json' id='report-data'>{payload.replace('</', '<' + chr(92) + '/')}</script>",
        "</body></html>"])


def write_report(path: Path, data: dict) -> Path:
    return write_text(path, render(data))
