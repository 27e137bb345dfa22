"""The build report shows the layers that were dropped and the tokens that were kept."""

import json
import re

import pytest
import torch

from vlacompile.report import report_data
from vlacompile.report.data import selected_tokens
from vlacompile.report.figures import dit_similarity, kept_tokens, layer_importance
from vlacompile.report.html import render


def _tokens_the_model_keeps(tiny, compiled, image, instruction):
    """The visual indices the LLM really continues with: the positions the selector gathers."""
    kept = {}

    def grab(module, args, output):
        kept["positions"] = output[2][0]  # (h, valid, positions); positions = original indices

    handle = compiled.model.llm_backbone.selector.register_forward_hook(grab)
    pixels, ids = tiny.encode(image, instruction)
    with torch.no_grad():
        compiled.model.cognition(pixels, ids)
    handle.remove()
    positions = kept["positions"].tolist()
    return sorted(p - 1 for p in positions if 1 <= p <= 256)  # [BOS, visual 1..256, prompt]


def test_selected_tokens_are_the_ones_the_llm_keeps(tiny, compiled):
    sample = compiled.heldout[2]
    groups, _ = selected_tokens(tiny, compiled.model, sample)
    assert [len(groups["relevance"]), len(groups["diversity"])] == [4 + 26, 26]  # K_key + alpha (T - K_key)
    assert not set(groups["relevance"]) & set(groups["diversity"])
    union = sorted(groups["relevance"] + groups["diversity"])
    assert union == _tokens_the_model_keeps(tiny, compiled, sample.load_image(), sample.instruction)


def test_each_kept_token_stands_for_its_share_of_all_256(tiny, compiled):
    groups, stands_for = selected_tokens(tiny, compiled.model, compiled.heldout[2])
    assert sorted(stands_for) == sorted(groups["relevance"] + groups["diversity"])
    assert sum(stands_for.values()) == 256 and min(stands_for.values()) >= 1


def test_token_figure_writes_how_many_tokens_a_kept_one_stands_for():
    import numpy as np

    fig = kept_tokens(np.zeros((224, 224, 3), np.uint8), 16, {"relevance": [0, 17]}, {"0": 1, "17": 200})
    texts = {t.get_text(): t.get_position() for t in fig.axes[0].texts}
    assert texts == {"200": (21.0, 21.0)}  # centre of patch (1, 1); a count of 1 is not written


def test_layer_figure_marks_exactly_the_dropped_layers():
    importance = [0.5, 0.001, 0.3, 0.0, 0.2]
    fig = layer_importance(importance, [1, 3])
    ax = fig.axes[0]
    bands = sorted(p.get_gid() for p in ax.patches if str(p.get_gid()).startswith("dropped:"))
    assert bands == ["dropped:1", "dropped:3"]
    bars = [p for p in ax.patches if p.get_gid() != "dropped:1" and p.get_gid() != "dropped:3"]
    assert [round(b.get_height(), 3) for b in bars] == importance
    red = [i for i, b in enumerate(bars) if b.get_facecolor()[0] > 0.8 and b.get_facecolor()[2] < 0.3]
    assert red == [1, 3]
    # log scale, so the dropped layers' small bars stay visible; every layer labelled
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] <= 0.001
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]


def test_layer_figure_marks_a_free_layer_dropped_despite_its_importance():
    fig = layer_importance([0.5, 0.001, 0.3, 1.0], [1, 3], free=[3])
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_gid() == "importance" or not str(p.get_gid()).startswith("dropped:")]
    assert [bool(b.get_hatch()) for b in bars] == [False, False, False, True]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3*"]
    assert "3* free" in ax.get_title()


def test_layer_figure_draws_the_search_in_its_order_when_the_actions_chose():
    """--layer-method actions: the first panel still shows Eq. 1 (layer 2 dropped though tall), and a
    second draws the search's drops in their order with the deviation after each."""
    fig = layer_importance([0.5, 0.001, 0.3, 1.0, 0.2], [1, 2, 3], free=[3], search={
        "order": [3, 1, 2], "deviation": [0.0, 0.002, 0.01]})
    top, panel = fig.axes
    assert "chosen by the actions" in top.get_title()
    bars = [p for p in panel.patches if p.get_gid() == "search"]
    assert [round(b.get_height(), 4) for b in bars] == [0.0, 0.002, 0.01]
    assert [t.get_text() for t in panel.get_xticklabels()] == ["3*", "1", "2"]
    assert len(layer_importance([0.5, 0.001], [1]).axes) == 1  # Eq. 1 alone: one panel


def test_cache_figure_draws_every_block_and_keeps_its_legend_to_the_two_branches():
    """pi0's 18 expert layers: one line per layer and branch with its values, coloured by layer on a
    colour bar, and a legend of two entries (a legend per line covered the plot)."""
    attn = [[1 - 0.01 * j - 0.001 * s for s in range(9)] for j in range(18)]
    mlp = [[v - 0.02 for v in row] for row in attn]
    fig = dit_similarity({"attn": attn, "mlp": mlp, "unit": "expert layer"}, [0, 5], 5)
    ax = fig.axes[0]
    lines = {str(l.get_gid()): l for l in ax.get_lines() if l.get_gid()}
    assert len(lines) == 36 and list(lines["mlp:17"].get_ydata()) == mlp[17]
    assert lines["attn:0"].get_color() != lines["attn:17"].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["attention", "MLP"]
    assert fig.axes[1].get_ylabel() == "expert layer"  # the colour bar
    assert ax.get_xlim() == (0.5, 9.5)


def test_token_figure_outlines_each_kept_patch_where_it_is():
    import numpy as np

    fig = kept_tokens(np.zeros((224, 224, 3), np.uint8), 16, {"relevance": [0, 17], "diversity": [255]})
    boxes = {p.get_gid(): p.get_xy() for p in fig.axes[0].patches}
    assert boxes == {"relevance:0": (0.0, 0.0), "relevance:17": (14.0, 14.0), "diversity:255": (210.0, 210.0)}


@pytest.fixture(scope="module")
def report_html(tiny, compiled, calibrated, validated):
    summary = {"model": tiny.source, "compile": compiled.config.to_json(),
               "passes": [r.to_json() for r in compiled.records], "parity": validated.to_json(),
               "fidelity": {"samples": 8, "cognition_cosine": 0.9, "actions": {"overall": {"cosine": 0.5, "l1": 0.1, "linf": 0.2},
                                                                  "per_dim": {}}},
               "latency": {"reference (PyTorch eager)": {"p50_ms": 90.0}, "compiled fp32 (ONNX Runtime)": {"p50_ms": 50.0}},
               "costs": {"reference": [{"module": "llm", "flops": 2e9}], "compressed": [{"module": "llm", "flops": 5e8}]}}
    data = report_data(summary, calibrated[0].meta, tiny, compiled.model, compiled.heldout[0])
    return render(data), data


def test_report_is_self_contained_with_every_plot_and_its_data(report_html, compiled):
    html, data = report_html
    images = re.findall(r"<img id='(\w+)' src='data:image/png;base64,([A-Za-z0-9+/=]{1000,})'>", html)
    assert [name for name, _ in images] == ["layers", "tokens", "dit", "costs"]
    embedded = json.loads(re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", html, re.S)[1])
    record = next(r for r in compiled.records if r.name == "layer_drop")
    assert embedded["layers"]["dropped"] == record.changes["dropped_layers"] and len(embedded["layers"]["importance"]) == 32
    assert sum(len(v) for v in embedded["tokens"]["kept"].values()) == 56
    assert embedded["dit"]["computing_steps"] == [0, 5] and embedded["dit"]["interval"] == 5
    assert "<td>vision</td><td>fp32</td>" in html and "FAIL" not in html
    assert html.index("<h2>Summary</h2>") < html.index("<h2>Layer importance") and "compile config: <code>" not in html
    assert html.count("What to look for:") == 5  # four figures and the parity table
    for label in ("model", "code revision", "date", "machine", "latency", "parity with PyTorch", "fidelity"):
        assert f"<th>{label}</th>" in html
    assert "poor fidelity on held-out episodes" in html  # the fixture's actions cosine is 0.5


def _summary(actions=0.95, cognition=0.99, similarity=None, computing=(0, 5), interval=5, average_only=False):
    output = {"name": "cognition", "passed": True, "average_only": average_only, "used": 0.5, "worst_used": 3.6,
              "worst_sample_name": "ep08_step03.png", "tolerance": "mean (avg) 0.01, cos 0.999", "cosine": 0.9991}
    return {"model": "m", "compile": {"cache": {"interval": interval}},
            "passes": [{"name": "cache", "changes": {"computing_steps": list(computing)}}],
            "calibration": {"dit_similarity": similarity or {"attn": [[0.99] * 9], "mlp": [[0.99] * 9]}},
            "fidelity": {"samples": 8, "cognition_cosine": cognition, "actions": {"overall": {"cosine": actions}}},
            "parity": {"passed": True, "graphs": [{"graph": "llm", "precision": "fp16", "samples": 8,
                                                   "average_only": average_only, "outputs": [output]}],
                       "pipelines": []},
            "latency": {"reference (PyTorch eager)": {"p50_ms": 90.0}}}


def test_a_build_with_margin_everywhere_has_no_warnings():
    from vlacompile.report.summary import warnings

    assert warnings(_summary()) == []


@pytest.mark.parametrize("summary,expected", [
    (_summary(actions=0.85), "poor fidelity on held-out episodes: actions cosine 0.850"),
    (_summary(cognition=0.9), "cognition cosine 0.900"),
    (_summary(average_only=True), "llm fp16 cognition passes parity only on average over 8 samples: "
                                  "ep08_step03.png alone uses 360% of the gate"),
    # steps 1..3 of a 4-step loop; interval 3 computes 0 and 3 and reuses at 1 and 2, where the
    # attention output changed (cosine 0.5 with the step before): the cache approximates a moving target
    (_summary(similarity={"attn": [[0.95, 0.5, 0.2]], "mlp": [[0.99, 0.99, 0.99]]}, computing=(0, 3), interval=3),
     "1 of 4 reused block outputs have a calibrated cross-step cosine below 0.9, lowest block 0 attention at step 2"),
    (_summary(similarity={"attn": [[0.95, 0.5, 0.2]], "mlp": [[0.99, 0.99, 0.99]], "unit": "expert layer"},
              computing=(0, 3), interval=3),
     "1 of 4 reused expert layer outputs have a calibrated cross-step cosine below 0.9, lowest expert layer 0 attention"),
])
def test_warnings_are_raised_by_the_numbers_that_call_for_them(summary, expected):
    from vlacompile.report.summary import warnings

    found = warnings(summary)
    assert len(found) == 1 and found[0][0] == "warning" and expected in found[0][1], found


def test_the_cache_is_not_blamed_for_steps_it_recomputes():
    from vlacompile.report.summary import warnings

    low_at_computing_step = {"attn": [[0.95, 0.5, 0.97]], "mlp": [[0.99, 0.99, 0.99]]}
    assert warnings(_summary(similarity=low_at_computing_step, computing=(0, 2), interval=2)) == []


def _with_success(reference, *compiled, episodes=10):
    loop = {"policies": {"reference (PyTorch)": {"summary": {"overall": {"success_rate": reference,
                                                                         "episodes": episodes}}}}}
    for i, rate in enumerate(compiled):
        loop["policies"][f"compiled p{i}"] = {"summary": {"overall": {"success_rate": rate, "episodes": episodes}}}
    return {**_summary(), "closed_loop": loop}


@pytest.mark.parametrize("summary,expected", [
    (_with_success(0.9, 0.85), []),  # 5 points: within what 10 episodes can tell apart
    (_with_success(0.9, 0.7), ["compiled p0 succeeds on 70% of 10 held-out episodes against 90% for the reference"]),
    (_with_success(0.3, 0.3), ["the uncompressed policy itself succeeds on only 30% of 10 held-out episodes"]),
])
def test_closed_loop_warnings_name_a_weak_reference_or_a_compiled_drop(summary, expected):
    from vlacompile.report.summary import warnings

    found = [text for _, text in warnings(summary)]
    assert len(found) == len(expected) and all(e in f for e, f in zip(expected, found)), found
