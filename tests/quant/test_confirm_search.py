"""quant/confirm.py's search, on a hand-worked check: which groups it removes, in what order, and
which it puts back."""

from vlacompile.quant.confirm import search
from vlacompile.quant.recipe import Recipe

GATE = 0.99


def _check(recipe: Recipe) -> dict:
    """The lowest cosine of a hand-made pipeline: x and y cost 0.002 and 0.001 each; c and d each alone
    put the worst input 0.02 below 1, and together no further (the same input, as vision attention
    and vision MLP did on c16)."""
    q = set(recipe.quantize)
    cosine = 1 - 0.002 * ("x" in q) - 0.001 * ("y" in q) - 0.02 * bool(q & {"c", "d"})
    return {"quantize": list(recipe.quantize), "passed": cosine >= GATE, "min_cosine": cosine}


def test_search_removes_until_it_passes_then_puts_back_what_was_not_the_cause():
    # By hand: all four 0.977. Without x 0.979, y 0.978, c or d 0.977: x goes. Then without y 0.98,
    # c or d 0.979: y goes. Then c and d tie at 0.98 (c goes, the first), and without d 1.0 passes.
    # Put back in that order: x (0.998) and y (0.997) pass, c and d (0.977 each) do not.
    found = search(Recipe(("x", "y", "c", "d")), _check)
    assert [s.get("dropped") for s in found.steps] == [None, "x", "y", "c", "d"]
    assert [round(s["min_cosine"], 6) for s in found.steps] == [0.977, 0.979, 0.98, 0.98, 1.0]
    assert [(r["restored"], r["passed"]) for r in found.restores] == [("x", True), ("y", True), ("c", False),
                                                                  ("d", False)]
    assert found.recipe.quantize == ("x", "y") and found.final["passed"]
    assert round(found.final["min_cosine"], 6) == 0.997


def test_a_recipe_that_passes_is_kept_as_it_is():
    found = search(Recipe(("x", "y")), _check)
    assert found.recipe.quantize == ("x", "y") and len(found.steps) == 1 and not found.restores
