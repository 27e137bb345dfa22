"""A measured recipe checked on every calibration image under several noise draws, backed off until
it passes the pipeline's parity gate there, then given back what it still passes with.

sensitivity.py chooses groups on the held-out samples, one noise draw each (12 on the shipped set),
which bounds the tail poorly. On c15 (the default of 2026-12-05 afternoon) a recipe whose lowest
held-out actions cosine was 0.9975 reached 0.988 on ep00_step00 with noise draw 0, a calibration
image the build validates on, and failed the build's parity: the int8 vision graph moves the
cognition feature a little, and that draw of the sampler's noise carried it into the actions (the
same image gave 0.998 and 0.997 under draws 10,000 and 20,000). So a measured recipe is run over
every sample of the calibration folder (calibration and held-out) under noise draws 0 to DRAWS - 1,
against the gate `validate` applies to the pipeline's actions (compare/parity.py). While it fails,
each chosen group is tried out of the recipe, and the one whose removal leaves the highest lowest
cosine goes. Greedy removal can take out a group that was not the cause: on c16 (2026-12-05) no
single removal passed, LLM MLP's lifted the failing input most (by 0.0025) and went first, and
only without both vision groups did the recipe pass. So once it passes, each dropped group is tried
back in the order it left, and stays if the recipe still passes. Every step is recorded in the
evidence. A given recipe (--quant-recipe) is the user's choice and is not changed; validation
reports on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from .chain import cosines, quantize_chain, run_chain
from .recipe import Recipe

# Noise draws per image: validate draws noise i for its i-th sample, and compares on 8 by default
# (build --samples), so every pair it can meet with 8 samples or fewer is among these.
DRAWS = 8


class Wide(NamedTuple):
    tensors: list[dict]  # the first graphs' inputs
    names: list[str]  # "image (noise draw)"
    draws: int


def wide_inputs(policy, samples, draws: int = DRAWS) -> Wide:
    """Each sample under each noise draw (the same draws for every sample). The inputs that do not
    depend on the noise are the same arrays in every draw, so run_graph runs the graphs before the
    noise once per image."""
    import numpy as np

    from .feeds import pipeline_inputs

    per_draw = [[pipeline_inputs(policy, [s], seed=draw)[0] for s in samples] for draw in range(draws)]
    tensors = [{k: b[k] if np.array_equal(v, b[k]) else v for k, v in t.items()}
               for row in per_draw for t, b in zip(row, per_draw[0])]
    names = [f"{Path(s.image_path).name} (noise {draw})" for draw in range(draws) for s in samples]
    return Wide(tensors, names, draws)


class _Check:
    """Quantize all graphs by a recipe and compare the pipeline's actions with the fp32 graphs'."""

    def __init__(self, sources, plans, calib, wide: Wide, reference, precision, method, scratch):
        from ..compare.parity import TOLERANCES

        self.sources, self.plans, self.calib, self.wide = sources, plans, calib, wide
        self.reference, self.precision, self.method = reference, precision, method
        self.scratch, self.tol, self.runs = Path(scratch), TOLERANCES[precision], 0

    def __call__(self, recipe: Recipe) -> dict:
        from ..backends import quiet_polygraphy
        from ..compare.parity import as_run_results, compare

        self.runs += 1
        files = {g: self.scratch / f"{g}.confirm{self.runs}.{self.precision}.onnx" for g in self.sources}
        nodes = {g: self.plans[g].nodes(recipe.quantize, recipe.keep_float) for g in self.sources}
        quantize_chain(self.sources, files, nodes, self.calib, self.precision, self.method, self.scratch)
        got = run_chain(files, {g: self.precision if nodes[g] else "fp32" for g in self.sources}, self.wide.tensors)
        for f in files.values():
            f.unlink()
        quiet_polygraphy()
        (out,) = compare(as_run_results(self.precision, [{"actions": g["actions"]} for g in got]),
                         as_run_results("fp32", [{"actions": w["actions"]} for w in self.reference]), self.tol)
        cos = cosines(got, self.reference)
        return {"quantize": list(recipe.quantize), "passed": out.passed, "min_cosine": float(cos.min()),
                "worst": self.wide.names[int(cos.argmin())], "mean_abs": out.mean_abs}


def _without(recipe: Recipe, group: str) -> Recipe:
    """The recipe less one group, and less the modules it kept float inside that group."""
    inside = set(recipe.evidence.get("groups", {}).get(group, {}).get("keep_float", []))
    return Recipe(tuple(g for g in recipe.quantize if g != group),
                  tuple(k for k in recipe.keep_float if k not in inside), recipe.source, recipe.evidence)


def _with(recipe: Recipe, group: str, original: Recipe) -> Recipe:
    """The recipe with one of `original`'s groups back, with the modules it kept float inside it."""
    inside = set(original.evidence.get("groups", {}).get(group, {}).get("keep_float", []))
    return Recipe(tuple(g for g in original.quantize if g in recipe.quantize or g == group),
                  tuple(k for k in original.keep_float if k in recipe.keep_float or k in inside),
                  recipe.source, recipe.evidence)


class Search(NamedTuple):
    recipe: Recipe
    steps: list[dict]  # the recipe as given, then one row per group removed
    restores: list[dict]  # one row per removed group tried back
    final: dict  # the row of the recipe returned


def search(recipe: Recipe, check) -> Search:
    """`check(recipe)` -> {"passed", "min_cosine", ...}. Remove groups while the recipe fails, the
    one whose removal leaves the highest lowest cosine each time; then put back each removed group,
    in the order it left, that the recipe passes with."""
    original, row = recipe, check(recipe)
    steps = [row]
    while not row["passed"] and recipe.quantize:
        trials = {g: check(_without(recipe, g)) for g in recipe.quantize}
        drop = max(trials, key=lambda g: (trials[g]["passed"], trials[g]["min_cosine"]))
        recipe, row = _without(recipe, drop), trials[drop]
        steps.append({**row, "dropped": drop, "tried": {g: t["min_cosine"] for g, t in trials.items()}})
    restores = []
    for group in [s["dropped"] for s in steps[1:]] if row["passed"] else []:
        candidate = _with(recipe, group, original)
        trial = check(candidate)
        restores.append({**trial, "restored": group})
        if trial["passed"]:
            recipe, row = candidate, trial
    return Search(recipe, steps, restores, row)


def confirm(recipe: Recipe, sources: dict[str, Path], plans: dict, calib: list[dict], wide: Wide,
            reference: list[dict], precision: str, method: str, scratch: Path) -> Recipe:
    """`reference`: the fp32 graphs' tensors on `wide`. -> the recipe that passes (possibly with no
    group), its evidence extended with the search under "confirm"."""
    check = _Check(sources, plans, calib, wide, reference, precision, method, scratch)
    found = search(recipe, check)
    recipe = found.recipe
    evidence = {**recipe.evidence, "confirm": {
        "samples": len(wide.tensors), "draws": wide.draws, "gate": check.tol.short("actions"), "steps": found.steps,
        "restores": found.restores, "final": found.final}}
    if "spent" in evidence:  # what the groups left spend of the budget (sensitivity.py's sum)
        groups = evidence["groups"]
        evidence["spent"] = sum(groups[g].get("partial", groups[g])["damage"] for g in recipe.quantize)
    return Recipe(recipe.quantize, recipe.keep_float, recipe.source, evidence)
