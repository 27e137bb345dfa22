"""Per-group sensitivity and the recipe it implies.

Each group is quantized alone (the other graphs, and the rest of its own graph, stay fp32) and the
pipeline's actions on held-out samples are compared with the fp32 graphs'. Small independent
errors add in 1 - cosine (it is half the squared relative error), so the recipe spends an error
budget: half of the parity gate's slack, 1 - cosine <= (1 - gate) / 2, leaving the other half for
inputs calibration never saw. Groups go in from the least damaging while the sum of their
damages (each group's 1 - lowest cosine over the samples) stays within the budget; a group that
would overspend it stays float. The combined recipe is then measured, not assumed.
"""

from __future__ import annotations

from pathlib import Path

from .chain import cosines, quantize_chain, run_chain
from .recipe import Recipe


def group_graphs(plans: dict, groups) -> dict[str, str | None]:
    """group -> the graph holding its GEMMs (None: the rewritten model has none of it)."""
    return {grp: next((g for g, p in plans.items() if p.nodes([grp])), None) for grp in groups}


def measure(sources: dict[str, Path], plans: dict, groups, calib: list[dict], held: list[dict], precision: str,
            method: str, scratch: Path, gate: float, reference: list[dict]) -> Recipe:
    """`reference`: the fp32 graphs' tensors on `held` (its "actions")."""
    fp32 = {g: "fp32" for g in sources}
    calib = run_chain(sources, fp32, calib)  # every graph's fp32 inputs: a lone group's upstream is fp32
    rows = {}
    for grp, graph in group_graphs(plans, groups).items():
        if graph is None:
            rows[grp] = {"graph": None, "nodes": 0}
            continue
        files = dict(sources)
        files[graph] = Path(scratch) / f"{graph}.{grp}.{precision}.onnx"
        nodes = {g: (plans[g].nodes([grp]) if g == graph else []) for g in sources}
        quantize_chain({graph: sources[graph]}, {graph: files[graph]}, {graph: nodes[graph]},
                       calib, precision, method, scratch)
        cos = cosines(run_chain(files, {**fp32, graph: precision}, held), reference)
        rows[grp] = {"graph": graph, "nodes": len(nodes[graph]), "mean_cosine": float(cos.mean()),
                     "min_cosine": float(cos.min())}
    budget, spent, chosen = (1 - gate) / 2, 0.0, []
    measured = sorted((r for r in rows.items() if r[1]["nodes"]), key=lambda r: 1 - r[1]["min_cosine"])
    for grp, row in measured:
        damage = max(0.0, 1 - row["min_cosine"])
        row["damage"] = damage
        row["quantized"] = spent + damage <= budget
        if row["quantized"]:
            spent += damage
            chosen.append(grp)
    evidence = {"metric": f"actions cosine against the fp32 graphs, {len(held)} held-out samples",
                "budget": budget, "spent": spent, "gate": gate, "groups": rows}
    return Recipe(tuple(g for g in groups if g in chosen), (), "sensitivity", evidence)

