"""`vlacompile eval`: closed-loop success of the reference and of compiled policies, on the same
held-out episodes, with tables, JSON and filmstrips.

The policies come from what a user has: the PyTorch reference (a preset or checkpoint), that model
rewritten by the passes (in PyTorch), and exported graphs (a graphs folder or a bundle) run by the
deployed runtime. Graphs are refused when they were compiled from other weights than the
reference they are compared with.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .errors import UserError
from .sim.evaluate import EvalConfig, evaluate
from .sim.policies import GraphPolicy, TorchPolicy, open_graphs

RESULTS, TABLE = "eval.json", "eval.md"


def check_same_model(folder: Path, manifest: dict, policy) -> None:
    """Graphs and the reference they are compared with must come from the same weights."""
    from .calibration.hashing import model_hash

    recorded = manifest.get("calibration", {}).get("model_hash")
    if recorded != model_hash(policy.model):
        raise UserError(f"{folder} was compiled from other weights ({manifest['model']['preset']}, "
                        f"{str(recorded)[:12]}) than the reference {policy.source}; pass the checkpoint it was built "
                        "from with --model, or evaluate it alone with --no-reference")


def rewritten_policy(policy, compiled) -> TorchPolicy:
    from .sweep import label

    return TorchPolicy(replace(policy, model=compiled.model), f"rewritten {label(compiled.config, policy.cfg)} (PyTorch)")


def graph_policies(folder: Path, precisions, backend: str, engines: Path | None = None) -> list[GraphPolicy]:
    return [open_graphs(folder, p, backend, engines) for p in precisions]


def run(policies: list, cfg: EvalConfig, progress: bool = True, log=print, workers: int = 1) -> dict:
    """Every policy on the same episodes: {"config", "policies": {name: {"summary", "episodes"}}, "filmstrips"}.
    `workers`: processes for the policies that can run elsewhere (sim/eval_workers.py)."""
    out = {"config": None, "policies": {}, "filmstrips": {}}
    for p in policies:
        res = evaluate(p, cfg, progress, desc=p.name, workers=workers)
        out["config"] = res["config"]
        out["policies"][p.name] = {"summary": res["summary"], "episodes": res["episodes"]}
        out["filmstrips"][p.name] = res["filmstrips"]
        s = res["summary"]["overall"]
        log(f"{p.name}: {s['successes']}/{s['episodes']} = {s['success_rate']:.1%} "
            f"(95% CI {s['ci95'][0]:.1%}-{s['ci95'][1]:.1%}), mean {s['mean_steps']:.1f} steps")
    return out


def table(result: dict) -> tuple[list[str], list[list[str]]]:
    """One row per policy: overall and per-family success (with the 95% interval), mean steps."""
    policies = result["policies"]
    families = list(next(iter(policies.values()))["summary"]["families"])
    rows = []
    for name, r in policies.items():
        s = r["summary"]
        cells = [f"{s['families'][f]['success_rate']:.0%}" for f in families]
        o = s["overall"]
        rows.append([name, f"{o['success_rate']:.1%} [{o['ci95'][0]:.0%}, {o['ci95'][1]:.0%}]", *cells,
                     f"{o['mean_steps']:.1f}"])
    return ["policy", f"success (n={o['episodes']}, 95% CI)", *families, "mean steps"], rows


def outcome_table(result: dict) -> tuple[list[str], list[list[str]]]:
    """One row per policy: how many episodes ended each way (sim/outcomes.py), the ways that happened."""
    from .sim.outcomes import OUTCOMES

    policies = result["policies"]
    seen = [o for o in OUTCOMES if any(o in r["summary"]["overall"]["outcomes"] for r in policies.values())]
    rows = [[name, *(str(r["summary"]["overall"]["outcomes"].get(o, 0)) for o in seen)] for name, r in policies.items()]
    return ["policy", *seen], rows


def markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers), *["| " + " | ".join(r) + " |" for r in rows]]


def write(result: dict, out: Path, film_of: str | None = None) -> list[Path]:
    """eval.json, eval.md and (for `film_of`, default the last policy) filmstrip.png in `out`."""
    from .fsutil import staged_file, write_json, write_text
    from .report.figures import filmstrip

    out = Path(out)
    md = ["# vlacompile eval", "", f"Protocol: {protocol(result['config'])}", "", *markdown(*table(result)), "",
          "How the episodes ended (episodes; the first decisive event, see vlacompile/sim/outcomes.py):", "",
          *markdown(*outcome_table(result))]
    data = {k: v for k, v in result.items() if k != "filmstrips"}
    files = [write_json(out / RESULTS, data), write_text(out / TABLE, "\n".join(md) + "\n")]
    strips = result["filmstrips"].get(film_of or list(result["filmstrips"])[-1], [])
    if strips:
        with staged_file(out / "filmstrip.png") as tmp:
            filmstrip(strips).savefig(tmp, format="png")
        files.append(out / "filmstrip.png")
    return files


def protocol(cfg: dict) -> str:
    return (f"{cfg['episodes']} held-out episodes ({cfg['split']} seeds from {cfg['start']}, families "
            f"{', '.join(cfg['families'])} in turn); each prediction's first {cfg['execute']} actions are executed, "
            f"then the policy re-plans{_ensemble(cfg)}; the same scenes and the same initial noise for every policy")


def _ensemble(cfg: dict) -> str:
    n = cfg.get("ensemble", 0)  # eval.json files written before the option have none
    return f", executing CogACT's adaptive ensemble of the last {n} predictions for that step" if n else ""
