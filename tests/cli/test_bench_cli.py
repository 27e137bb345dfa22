"""`vlacompile bench`: the JSON schema and the table; a sweep's table and plot. No timing asserts."""

import json

from click.testing import CliRunner

from vlacompile.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_bench_writes_json_and_markdown(tmp_path, calibrated):
    out = tmp_path / "bench"
    result = run("bench", "--no-condition-map", "--runs", 2, "--warmup", 0, "--out", out,
                 "--cache-dir", calibrated[0].path.parent)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    assert set(data["latency"]) == {"vision", "llm", "dit", "end_to_end"}
    for side in data["latency"].values():
        for timing in (side["reference"], side["compiled"]):
            assert timing["runs"] == 2 and 0 < timing["p50_ms"] <= timing["p90_ms"]
    assert [c["module"] for c in data["costs"]["reference"]] == ["vision", "llm", "action_head"]
    assert data["memory"]["peak_rss_mb"] > 0 and data["backend"] == "onnxruntime"
    assert "256 -> 56 visual" in result.output and "10 (2 full, 8 cached)" in result.output
    assert "| module | params | tokens | steps | time p50 | FLOPs |" in (out / "bench.md").read_text()


def test_sweep_gives_a_table_and_a_plot(tmp_path, calibrated):
    out = tmp_path / "sweep"
    result = run("bench", "--no-condition-map", "--layers", "32,22", "--tokens", "256", "--cache-interval", "1,5",
                 "--mlp-sparsity", 0, "--backend", "torch",
                 "--device", "cpu", "--no-compile", "--runs", 1, "--warmup", 0, "--eval-episodes", 2, "--out", out,
                 "--cache-dir", calibrated[0].path.parent)
    assert result.exit_code == 0, result.output
    sweep = json.loads((out / "sweep.json").read_text())
    rows = sweep["rows"]
    # the success column: each configuration and the reference on the same 2 held-out episodes
    assert sweep["eval_episodes"] == 2 and sweep["reference_success"] in (0.0, 0.5, 1.0)
    assert all(r["success"] in (0.0, 0.5, 1.0) for r in rows)
    assert rows[0]["success"] == sweep["reference_success"]  # every pass off: the reference's episodes
    assert [r["config"] for r in rows] == ["L32 T256 M0 C1", "L32 T256 M0 C5", "L22 T256 M0 C1", "L22 T256 M0 C5"]
    assert rows[0]["action_cosine"] > 0.9999  # every pass off: the reference itself
    assert rows[0]["flops_share"] == 1.0 and rows[3]["flops_share"] < rows[2]["flops_share"] < 1.0
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_plot_names_each_point_by_what_varies():
    """Full names of neighbouring points overlapped in the plot: a point is named by the flags that vary
    between rows, the rest and the varying flags' notes go to the title."""
    from vlacompile.sweep import point_labels

    names, shared = point_labels(["L18 T128 M0.25[expert 0] C5", "L15[actions, kv pairing] T128 M0.25[expert 0] C5",
                                  "L12[actions, kv pairing] T128 M0.25[expert 0] C5"])
    assert names == ["L18", "L15", "L12"]
    assert shared == "T128 M0.25[expert 0] C5; where applied, L[actions, kv pairing]"
    assert point_labels(["L32 T256 M0 C1", "L22 T256 M0 C5"]) == (["L32 C1", "L22 C5"], "T256 M0")


def test_bench_rejects_a_bad_list():
    result = run("bench", "--layers", "32,x")
    assert result.exit_code == 2 and "give integers separated by commas" in result.output
