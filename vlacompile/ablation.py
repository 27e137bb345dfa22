"""Closed-loop ablation in the style of EfficientVLA's Table 2: the reference, each pass alone, all
passes, and the baselines, every row on the same held-out episodes and the same initial noise.

    python -m vlacompile.ablation [--episodes 100] [--rows "NAME;NAME..."] [--model M] [--out ablation]

Rows run one after another in PyTorch (the passes' effect, not the runtime's). `--rows` picks a
subset, so that the rows can be split between processes; `--collate DIR...` merges their
ablation.json files into one table. docs/BENCHMARKS.md has the table of the shipped model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .passes.condition_map import ConditionMapConfig

# name -> the compile flags of that row; flags not given are off. The defaults of `build` are
# L22 T56 M0.25 C5 ("all") with the condition map.
ALL = {"layers": 22, "tokens": 56, "mlp_sparsity": 0.25, "cache_interval": 5}
ROWS: dict[str, dict] = {
    "reference": {},
    "layer drop L22": {"layers": 22},
    "MLP pruning 0.25": {"mlp_sparsity": 0.25},
    "token selection T56": {"tokens": 56},
    "token selection T56, unweighted": {"tokens": 56, "token_weighting": "none"},
    "cache interval 5": {"cache_interval": 5},
    "all (L22 T56 M0.25 C5)": ALL,
    "all + condition map (build's default)": {**ALL, "condition": ConditionMapConfig()},  # not the paper's
    "layer drop L22 + condition map": {"layers": 22, "condition": ConditionMapConfig()},
    "token selection T56 + condition map": {"tokens": 56, "condition": ConditionMapConfig()},
    "all, unweighted tokens": {**ALL, "token_weighting": "none"},
    "random layer drop L22": {"layers": 22, "layer_method": "random"},
    "last-layer drop L22": {"layers": 22, "layer_method": "last"},
    "layer drop L22 by the actions": {"layers": 22, "layer_method": "actions"},  # not the paper's: layer_search.py
    "all, layers by the actions": {**ALL, "layer_method": "actions"},
    "FastV tokens T56": {"tokens": 56, "token_method": "fastv"},
    "random tokens T56": {"tokens": 56, "token_method": "random"},
    "all, no cache (C1)": {**ALL, "cache_interval": 1},
    "all, cache interval 2": {**ALL, "cache_interval": 2},
    "all, cache interval 10": {**ALL, "cache_interval": 10},
}
RESULTS, TABLE = "ablation.json", "ablation.md"


def flags(row: dict, n_layers: int, n_visual: int) -> dict:
    """A row's flags completed with the 'off' value of every pass (the compile options' names)."""
    return {"layers": n_layers, "tokens": n_visual, "mlp_sparsity": 0.0, "cache_interval": 1,
            "token_method": "efficientvla", "select_layer": 2, "layer_method": "importance", **row}


def policies(policy, rows: list[str], calib_dir, cache_dir) -> list:
    """One closed-loop policy per row, named by the row."""
    from . import pipeline
    from .cli.compile_options import compress_config
    from .sim.policies import TorchPolicy

    out = []
    for name in rows:
        if not ROWS[name]:
            out.append(TorchPolicy(policy, name))
            continue
        f = flags(ROWS[name], policy.cfg.llm.layers, policy.cfg.visual_tokens)
        config = compress_config(policy.cfg.llm.layers, policy.cfg.visual_tokens, **f)
        compiled = pipeline.rewrite(policy, config, calib_dir, cache_dir, None, f["select_layer"], progress=False)
        out.append(TorchPolicy(_with_model(policy, compiled.model), name))
    return out


def _with_model(policy, model):
    from dataclasses import replace

    return replace(policy, model=model)


def markdown(results: dict) -> str:
    """The table: success with its 95% interval, the change against the reference, per family."""
    rows = results["policies"]
    families = list(next(iter(rows.values()))["summary"]["families"])
    ref = rows.get("reference", {}).get("summary", {}).get("overall", {}).get("success_rate")
    head = ["row", "success (95% CI)", "vs reference", *families, "mean steps"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        o = r["summary"]["overall"]
        delta = "" if ref is None or name == "reference" else f"{100 * (o['success_rate'] - ref):+.0f} pts"
        fam = [f"{r['summary']['families'][f]['success_rate']:.0%}" for f in families]
        lines.append(f"| {name} | {o['success_rate']:.0%} [{o['ci95'][0]:.0%}, {o['ci95'][1]:.0%}] | {delta} | "
                     + " | ".join(fam) + f" | {o['mean_steps']:.1f} |")
    return "\n".join(lines) + "\n"


def collate(folders: list[Path]) -> dict:
    """Merge the ablation.json of several partial runs (same protocol) in ROWS order."""
    parts = []
    for f in folders:
        try:
            parts.append(json.loads((Path(f) / RESULTS).read_text()))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--collate {f}: no readable {RESULTS} ({exc.__class__.__name__}); give folders written by "
                             "python -m vlacompile.ablation --out") from None
    configs = {json.dumps(p["config"], sort_keys=True) for p in parts}
    if len(configs) > 1:
        raise SystemExit("these runs used different episodes or protocols; they cannot share a table")
    merged = {k: v for p in parts for k, v in p["policies"].items()}
    return {"config": parts[0]["config"], "policies": {k: merged[k] for k in ROWS if k in merged}}


def write(results: dict, out: Path) -> None:
    from .closed_loop import protocol
    from .fsutil import write_json, write_text

    write_json(Path(out) / RESULTS, results)
    write_text(Path(out) / TABLE, f"Protocol: {protocol(results['config'])}\n\n" + markdown(results))


def parse_rows(text: str | None) -> list[str]:
    """--rows: names separated by ';' (row names contain commas), all rows when absent."""
    if text is None:
        return list(ROWS)
    rows = [r.strip() for r in text.split(";") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        raise SystemExit(f"--rows: unknown {unknown or text!r}; give names from {list(ROWS)} separated by ';'")
    return rows


def main(argv=None) -> None:
    from .calibration import DEFAULT_DIR
    from .pipeline import DEFAULT_CALIB

    ap = argparse.ArgumentParser(prog="python -m vlacompile.ablation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--rows", default=None, help="row names separated by ';' (names contain commas; default: all)")
    ap.add_argument("--model", default=None, help="a preset or a folder `vlacompile train` wrote (default: cogact-tiny)")
    ap.add_argument("--out", type=Path, default=Path("ablation"))
    ap.add_argument("--collate", type=Path, nargs="+", help="merge these partial runs into --out instead")
    ap.add_argument("--workers", type=int, default=None,
                    help="processes per row's episodes, one thread each (default: one per core; see vlacompile eval)")
    args = ap.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        raise SystemExit(f"--workers {args.workers}: give 1 (this process) or more")
    if args.collate:
        results = collate(args.collate)
    else:
        from . import closed_loop
        from .models import resolve
        from .sim.evaluate import EvalConfig
        from .workers import usable_cores

        rows = parse_rows(args.rows)
        results = closed_loop.run(policies(resolve(args.model, None), rows, DEFAULT_CALIB, DEFAULT_DIR),
                                  EvalConfig(args.episodes, filmstrips=0), workers=args.workers or usable_cores())
        results.pop("filmstrips", None)
    write(results, args.out)
    print(markdown(results))


if __name__ == "__main__":
    main()
