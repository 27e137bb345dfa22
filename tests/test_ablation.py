"""The closed-loop ablation: rows mean what their names say, and the table is built from runs."""

import json
from dataclasses import replace

import pytest

from vlacompile import ablation
from vlacompile.cli.compile_options import compress_config


def config(name):
    return compress_config(32, 256, **ablation.flags(ablation.ROWS[name], 32, 256))


def test_the_reference_row_switches_every_pass_off():
    c = config("reference")
    assert (c.layers, c.mlp, c.tokens, c.cache) == (None, None, None, None)


@pytest.mark.parametrize("name, on", [("layer drop L22", "layers"), ("MLP pruning 0.25", "mlp"),
                                      ("token selection T56", "tokens"), ("cache interval 5", "cache")])
def test_a_pass_alone_row_switches_on_only_that_pass(name, on):
    c = config(name)
    assert [p for p in ("layers", "mlp", "tokens", "cache") if getattr(c, p) is not None] == [on]


def test_baseline_rows_differ_from_their_pass_only_in_the_method():
    assert config("random layer drop L22").layers.method == "random"
    assert config("layer drop L22 by the actions").layers.method == "actions"
    assert config("all, layers by the actions") == replace(config("all (L22 T56 M0.25 C5)"), layers=replace(
        config("all (L22 T56 M0.25 C5)").layers, method="actions"))
    assert config("last-layer drop L22").layers.keep == config("layer drop L22").layers.keep == 22
    assert config("FastV tokens T56").tokens.method == "fastv"
    assert config("all, cache interval 10").cache.interval == 10 and config("all, no cache (C1)").cache is None


def test_unweighted_rows_are_the_papers_plain_drop_and_say_so():
    from vlacompile.models import resolve_config
    from vlacompile.sweep import label

    cfg = resolve_config("cogact-tiny", None)
    assert config("token selection T56").tokens.weighting == "auto"
    assert config("token selection T56, unweighted").tokens.weighting == "none"
    assert label(config("all, unweighted tokens"), cfg) == "L22 T56[unweighted] M0.25 C5"
    assert label(config("all (L22 T56 M0.25 C5)"), cfg) == "L22 T56 M0.25 C5"


def _part(folder, names, episodes):
    summary = {"overall": {"success_rate": 0.5, "ci95": [0.1, 0.9], "mean_steps": 40.0, "episodes": 2},
               "families": {"pick": {"success_rate": 0.5}}}
    folder.mkdir()
    data = {"config": {"episodes": episodes}, "policies": {n: {"summary": summary} for n in names}}
    (folder / ablation.RESULTS).write_text(json.dumps(data))
    return folder


def test_partial_runs_collate_in_row_order(tmp_path):
    a = _part(tmp_path / "a", ["all (L22 T56 M0.25 C5)"], 2)
    b = _part(tmp_path / "b", ["reference"], 2)
    merged = ablation.collate([a, b])
    assert list(merged["policies"]) == ["reference", "all (L22 T56 M0.25 C5)"]
    assert "| all (L22 T56 M0.25 C5) | 50% [10%, 90%] | +0 pts | 50% | 40.0 |" in ablation.markdown(merged)


def test_runs_of_other_episodes_do_not_share_a_table(tmp_path):
    with pytest.raises(SystemExit, match="different episodes"):
        ablation.collate([_part(tmp_path / "a", ["reference"], 2), _part(tmp_path / "b", ["all (L22 T56 M0.25 C5)"], 3)])


def test_a_folder_without_results_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=f"--collate {tmp_path}: no readable ablation.json"):
        ablation.collate([tmp_path])


def test_rows_default_to_all_and_split_on_semicolons_since_names_hold_commas():
    assert ablation.parse_rows(None) == list(ablation.ROWS)
    assert ablation.parse_rows("reference; all, cache interval 2") == ["reference", "all, cache interval 2"]
    with pytest.raises(SystemExit, match="--rows: unknown \\['all'\\]"):
        ablation.parse_rows("all")
