"""One self-contained HTML file: plots as embedded PNGs, tables, and the JSON they came from."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from ..fsutil import write_text
from . import figures


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
    out = {"layers": figures.layer_importance(data["layers"]["importance"], data["layers"]["dropped"]),
           "dit": figures.dit_similarity(data["dit"]["similarity"], data["dit"]["computing_steps"],
                                         data["dit"]["interval"]),
           "costs": figures.reference_vs_compiled(data["costs"], data["latency"])}
    if data["tokens"]["kept"]:
        out["tokens"] = figures.kept_tokens(data["_image"], data["tokens"]["grid"], data["tokens"]["kept"])
    if data.get("_filmstrip"):
        out["filmstrip"] = figures.filmstrip(data["_filmstrip"])
    return out


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


def _parity_rows(parity: dict) -> list[list]:
    return [[p["graph"], p["precision"], o["name"], f"{o['max_abs']:.2e}", f"{o['mean_abs']:.2e}",
             f"{o['cosine']:.6f}", "pass" if o["passed"] else "FAIL"]
            for p in parity["graphs"] + parity["pipelines"] for o in p["outputs"]]


def _fidelity_rows(fid: dict) -> list[list]:
    rows = [["cognition feature", f"{fid['cognition_cosine']:.4f}", "", ""]]
    rows.append(["actions, all", *(f"{fid['actions']['overall'][k]:.4f}" for k in ("cosine", "l1", "linf"))])
    rows += [[f"actions, {d}", *(f"{m[k]:.4f}" for k in ("cosine", "l1", "linf"))]
             for d, m in fid["actions"]["per_dim"].items()]
    return rows


def render(data: dict) -> str:
    images = {name: _png(fig) for name, fig in plots(data).items()}
    section = lambda title, name: (f"<h2>{title}</h2><img id='{name}' src='data:image/png;base64,{images[name]}'>"  # noqa: E731
                                   if name in images else "")
    payload = json.dumps({k: v for k, v in data.items() if not k.startswith("_")})
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'><title>vlacompile build report</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}</style></head><body>",
        f"<h1>vlacompile build report: {html.escape(str(data['model']))}</h1>",
        f"<p>compile config: <code>{html.escape(json.dumps(data['compile']))}</code></p>",
        section("Layer importance and the dropped layers", "layers"),
        section(f"Kept visual tokens on {html.escape(data['tokens']['image'])}: "
                f"&ldquo;{html.escape(data['tokens']['instruction'])}&rdquo;", "tokens"),
        section("DiT cross-step similarity and the cache", "dit"),
        "<h2>Parity with the PyTorch rewritten model</h2>",
        _table(["graph", "precision", "output", "max abs", "mean abs", "cosine", "parity"], _parity_rows(data["parity"])),
        _closed_loop(data, section),
        "<h2>Fidelity against the uncompressed reference (held-out episodes)</h2>",
        _table(["what", "cosine", "L1", "Linf"], _fidelity_rows(data["fidelity"])),
        section("Reference against compiled", "costs"),
        f"<script type='application/json' id='report-data'>{payload.replace('</', '<' + chr(92) + '/')}</script>",
        "</body></html>"])


def write_report(path: Path, data: dict) -> Path:
    return write_text(path, render(data))
