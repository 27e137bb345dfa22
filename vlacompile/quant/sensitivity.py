"""Per-group sensitivity and the recipe it implies.

Each group is quantized alone (the other graphs, and the rest of its own graph, stay fp32) and the
pipeline's actions on held-out samples are compared with the fp32 graphs'. Small independent
errors add in 1 - cosine (it is half the squared relative error), so the recipe spends an error
budget: half of the parity gate's slack, 1 - cosine <= (1 - gate) / 2, leaving the other half for
inputs calibration never saw. Groups go in from the least damaging while the sum of their
damages (each group's 1 - lowest cosine over the samples) stays within the budget, and only if
their graph still passes its own parity gate on every output (what `validate` checks) with the
groups of that graph already in: the shares of the gate they use alone add (a bound, since mean
absolute errors of two sources add at most), so two groups that each pass alone cannot fail it
together (on the default of 2026-12-05, vision attention and MLP with max calibration did).

A group that would overspend it is looked into, GEMM by GEMM, when it has few enough of them: the
damage of a trained model's group is often one module's (on the shipped cogact-tiny, DINOv2's
first qkv holds 0.0087 of vision_attention's 0.0087), so its most damaging modules stay float
(the recipe's keep_float) until the rest of the group, measured, costs at most a tenth of the
budget, what whole groups that join cost (0.0002-0.0004 there). A larger remainder is not trusted:
12 held-out samples bound it poorly (the projector's middle GEMM cost 0.0028 there and took the
pipeline's cosine to 0.97 on a calibration sample). Otherwise the group stays float. The combined
recipe is then measured, not assumed.
"""

from __future__ import annotations

from pathlib import Path

from .chain import cosines, quantize_chain, run_chain
from .recipe import Recipe

PARTIAL = 0.1  # what is left of a refined group may spend this fraction of the budget, no more
# A group is refined GEMM by GEMM only up to this many GEMMs: one quantization and one held-out run
# each (about 2 s on cogact-tiny). The LLM groups of a 32-layer model (88 and 66) stay whole.
MAX_REFINE = 24


def group_graphs(plans: dict, groups) -> dict[str, str | None]:
    """group -> the graph holding its GEMMs (None: the rewritten model has none of it)."""
    return {grp: next((g for g, p in plans.items() if p.nodes([grp])), None) for grp in groups}


class _Probe:
    """Quantize some GEMMs of one graph (everything else fp32); measure the actions and the graph's gate."""

    def __init__(self, sources, calib, held, precision, method, scratch, reference):
        import onnx

        from ..compare.parity import TOLERANCES

        self.sources, self.held, self.reference = sources, held, reference
        self.precision, self.method, self.scratch = precision, method, Path(scratch)
        self.calib = run_chain(sources, {g: "fp32" for g in sources}, calib)  # a lone group's upstream is fp32
        self.outputs = {g: [o.name for o in onnx.load(str(p), load_external_data=False).graph.output]
                        for g, p in sources.items()}
        self.tol, self.runs = TOLERANCES[precision], 0

    def __call__(self, graph: str, nodes: list[str]) -> dict:
        self.runs += 1
        files = dict(self.sources)
        files[graph] = self.scratch / f"{graph}.probe{self.runs}.{self.precision}.onnx"
        quantize_chain({graph: self.sources[graph]}, {graph: files[graph]}, {graph: nodes}, self.calib,
                       self.precision, self.method, self.scratch)
        precisions = {g: "fp32" for g in self.sources} | {graph: self.precision}
        got = run_chain(files, precisions, self.held)
        files[graph].unlink()
        cos = cosines(got, self.reference)
        return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()), "graph_gate": self.gate(graph, got)}

    def gate(self, graph: str, got: list[dict]) -> dict:
        """The graph's own parity gate (validate's: compare/parity.py) on every output against the
        fp32 graph's, the inputs fp32: a recipe whose graph fails it would fail the build's
        validation however little the actions move. pi0's prefix returns the K/V cache, where an
        int8 VLM swaps near-tied kept tokens (docs/BENCHMARKS.md). -> its worst output."""
        from ..backends import quiet_polygraphy
        from ..compare.parity import as_run_results, compare

        quiet_polygraphy()
        names = self.outputs[graph]
        outputs = compare(as_run_results(self.precision, [{n: g[n] for n in names} for g in got]),
                          as_run_results("fp32", [{n: w[n] for n in names} for w in self.reference]), self.tol)
        worst = min(outputs, key=lambda o: o.margin)
        return {"output": worst.name, "used": 1.0 - worst.margin, "passed": all(o.passed for o in outputs)}


def _damage(row: dict) -> float:
    return max(0.0, 1 - row["min_cosine"])


def _fits(measured: dict, gate_room: float) -> bool:
    """The graph still passes its gate, using at most `gate_room` of it (what its other groups left)."""
    return measured["graph_gate"]["passed"] and measured["graph_gate"]["used"] <= gate_room


def _refine(probe: _Probe, plan, grp: str, graph: str, room: float, gate_room: float, row: dict) -> None:
    """Try the group with its most damaging GEMMs float; record in `row` the first that costs at
    most `room` and fits in `gate_room` of its graph's gate."""
    nodes = plan.nodes([grp])
    alone = {n: probe(graph, [n]) for n in nodes}
    row["modules"] = {plan.quantize[n]: {**r, "damage": _damage(r)} for n, r in alone.items()}
    worst = sorted(nodes, key=lambda n: -_damage(alone[n]))
    for k in range(1, len(nodes)):
        if _damage(alone[worst[k - 1]]) == 0:
            break  # the rest cost nothing alone: keeping more float cannot help
        rest = [n for n in nodes if n not in worst[:k]]
        measured = probe(graph, rest)
        if _damage(measured) <= room and _fits(measured, gate_room):
            row["keep_float"] = [plan.quantize[n] for n in worst[:k]]
            row["partial"] = {**measured, "damage": _damage(measured), "nodes": len(rest)}
            return


def measure(sources: dict[str, Path], plans: dict, groups, calib: list[dict], held: list[dict], precision: str,
            method: str, scratch: Path, gate: float, reference: list[dict]) -> Recipe:
    """`reference`: the fp32 graphs' tensors on `held` (its "actions")."""
    probe = _Probe(sources, calib, held, precision, method, scratch, reference)
    rows, where = {}, group_graphs(plans, groups)
    for grp, graph in where.items():
        nodes = plans[graph].nodes([grp]) if graph else []
        rows[grp] = {"graph": graph, "nodes": len(nodes), **(probe(graph, nodes) if nodes else {})}
    budget, spent, chosen, keep, used = (1 - gate) / 2, 0.0, [], [], {}  # used: each graph's gate share
    for grp, row in sorted((r for r in rows.items() if r[1]["nodes"]), key=lambda r: _damage(r[1])):
        row["damage"], gate_room = _damage(row), 1.0 - used.get(row["graph"], 0.0)
        row["quantized"] = spent + row["damage"] <= budget and _fits(row, gate_room)
        if not row["quantized"] and row["nodes"] <= MAX_REFINE:
            _refine(probe, plans[row["graph"]], grp, row["graph"], min(budget - spent, PARTIAL * budget), gate_room,
                    row)
            row["quantized"] = "partial" in row
        if row["quantized"]:
            joined = row.get("partial", row)
            spent += joined["damage"]
            used[row["graph"]] = used.get(row["graph"], 0.0) + joined["graph_gate"]["used"]
            chosen.append(grp)
            keep += row.get("keep_float", [])
    evidence = {"metric": f"actions cosine against the fp32 graphs, {len(held)} held-out samples",
                "budget": budget, "spent": spent, "gate": gate, "groups": rows}
    return Recipe(tuple(g for g in groups if g in chosen), tuple(keep), "sensitivity", evidence)
