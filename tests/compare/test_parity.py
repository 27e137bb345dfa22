"""Parity checks catch a broken graph and point at the tensor where it breaks."""

import shutil

import numpy as np
import onnx
from onnx import numpy_helper

from vlacompile.compare.validate import check_graph, localize_fault, reference_samples
from vlacompile.runtime import manifest


def _break_one_matmul(path, scope="/llm_backbone/layers.5/mlp/down_proj"):
    """Negate the weight of one MatMul inside `scope`; return that node's name."""
    model = onnx.load(str(path))
    weights = {t.name: t for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "MatMul" and n.name.startswith(scope)
                and n.input[1] in weights)
    tensor = weights[node.input[1]]
    tensor.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(tensor), tensor.name))
    onnx.save(model, str(path))
    return node.name


def test_validation_writes_polygraphy_files_and_records_them(validated, graphs):
    m = manifest.read(graphs)
    for graph in ("vision", "llm", "dit"):
        assert f"{graph}.inputs.json" in m["files"] and f"{graph}.reference.json" in m["files"]
        assert f"--load-outputs {graphs / f'{graph}.reference.json'}" in m["parity"]["commands"][f"{graph}.fp16"]
    assert m["parity"]["passed"] and m["parity"]["samples"] == 4
    manifest.verify(graphs, m)


def test_a_broken_graph_is_caught_and_localized(tiny, compiled, graphs, validated, tmp_path):
    from vlacompile.data.calib import load_calib

    from ..conftest import CALIB

    folder = tmp_path / "graphs"
    shutil.copytree(graphs, folder)
    broken = _break_one_matmul(folder / "llm.fp32.onnx")
    m = manifest.seal(folder, manifest.read(folder), ["llm.fp32.onnx"])  # a bad export, not a corrupt file
    tensors = reference_samples(tiny, compiled.model, load_calib(CALIB)[:2])
    parity = check_graph(folder, m, "llm", "fp32", tensors)
    assert not parity and parity.outputs[0].cosine < 0.9999
    localize_fault(folder, m, parity, tiny, compiled.model, tensors[0])
    assert parity.fault is not None and parity.fault.node == broken, parity.fault
    assert parity.fault.compared > 100  # every tensor before layer 5 was compared and matched


def test_intact_graph_passes_against_its_own_reference(tiny, compiled, graphs, validated):
    from vlacompile.data.calib import load_calib

    from ..conftest import CALIB

    tensors = reference_samples(tiny, compiled.model, load_calib(CALIB)[-2:])
    parity = check_graph(graphs, manifest.read(graphs), "dit", "fp32", tensors)
    assert parity and parity.outputs[0].max_abs < 1e-4
    assert np.isfinite(parity.outputs[0].mean_abs)


def _parity(got: list, want: list, precision: str):
    from vlacompile.compare.parity import TOLERANCES, as_run_results, compare

    wrap = lambda arrays: [{"y": np.asarray(a, np.float32)} for a in arrays]  # noqa: E731
    (out,) = compare(as_run_results("graph", wrap(got)), as_run_results("pytorch", wrap(want)), TOLERANCES[precision])
    return out


def test_a_pass_that_holds_only_on_the_average_is_labelled_with_its_worst_sample():
    """fp16 gate: mean abs error averaged over samples <= 0.01. Errors 0.015 and 0.001 average to
    0.008 (80% of the gate, a pass), but the first sample alone uses 150%. (Values in [0.1, 1] keep
    the relative errors above their own 0.01 gate, so the absolute error decides.)"""
    want = [np.linspace(0.1, 1, 1000), np.linspace(0.1, 1, 1000)]
    out = _parity([want[0] + 0.015, want[1] + 0.001], want, "fp16")
    assert out.passed and out.average_only
    assert abs(out.used - 0.8) < 1e-3 and abs(out.worst_used - 1.5) < 1e-3 and out.worst_sample == 0
    assert abs(out.margin - 0.2) < 1e-3
    assert out.verdict(["a.png", "b.png"]) == "pass on average only (a.png alone fails)"
    clean = _parity([want[0] + 0.005, want[1] + 0.001], want, "fp16")
    assert clean.passed and not clean.average_only and clean.verdict() == "pass"


def test_each_output_of_a_graph_gets_its_own_verdict():
    """pi0's prefix graph returns validity masks beside its K/V cache: a K/V entry over the gate
    must not fail the masks that match exactly (Polygraphy's overall verdict covers all outputs)."""
    from vlacompile.compare.parity import TOLERANCES, as_run_results, compare

    want = [{"k": np.linspace(0.1, 1, 64, dtype=np.float32), "valid": np.array([True, False, True])}
            for _ in range(2)]
    got = [{"k": w["k"] + 1.0, "valid": w["valid"].copy()} for w in want]
    for precision in ("fp32", "int8"):  # elementwise, and the averaged statistic
        out = {o.name: o for o in compare(as_run_results("got", got), as_run_results("want", want),
                                          TOLERANCES[precision])}
        assert not out["k"].passed and out["valid"].passed and out["valid"].max_abs == 0


def test_elementwise_gate_use_is_the_smaller_of_abs_and_rel():
    """fp32: an element passes within 1e-3 abs OR 1e-3 rel. An error of 5e-4 on values of 10 uses
    50% of the abs tolerance but 5% of the rel one, so 5% of the gate."""
    out = _parity([np.full(100, 10.0005)], [np.full(100, 10.0)], "fp32")
    assert out.passed and abs(out.used - 0.05) < 1e-3 and abs(out.worst_used - 0.05) < 1e-3
    over = _parity([np.full(100, 1.002)], [np.full(100, 1.0)], "fp32")  # 2e-3 abs and rel: twice the gate
    assert not over.passed and abs(over.used - 2.0) < 1e-2 and over.margin < 0 and over.verdict() == "FAIL"


def test_an_interrupted_validation_leaves_a_folder_that_says_so(tiny, compiled, graphs, validated, tmp_path,
                                                                 monkeypatch):
    """A build killed during validation: package and load refuse the graphs unless told."""
    import pytest

    from vlacompile.compare import validate as v
    from vlacompile.data.calib import load_calib
    from vlacompile.errors import UserError
    from vlacompile.package import package
    from vlacompile.runtime import load

    from ..conftest import CALIB

    folder = tmp_path / "graphs"
    shutil.copytree(graphs, folder)
    assert manifest.read(folder)["validation"]["completed"] and manifest.read(folder)["validation"]["passed"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(v, "check_pipeline", interrupted)
    with pytest.raises(KeyboardInterrupt):
        v.validate(folder, tiny, compiled.model, load_calib(CALIB)[:2], progress=False)
    m = manifest.read(folder)
    assert m["validation"] == {"completed": False} and "parity" not in m
    assert not [n for n in m["files"] if n.endswith((".inputs.json", ".reference.json"))]
    manifest.verify(folder, m)  # consistent: what is listed is what is there
    with pytest.raises(UserError, match="validation did not complete"):
        package(folder, tmp_path / "bundle")
    bundle, _ = package(folder, tmp_path / "bundle", allow_unvalidated=True)
    with pytest.raises(UserError, match="validation did not complete"):
        load(bundle)
    with load(bundle, allow_unvalidated=True) as policy:
        assert policy.predict(load_calib(CALIB)[0].load_image(), "pick up the red block").shape == (16, 7)


def test_the_terminal_table_folds_many_passing_outputs_into_their_worst_and_shows_every_failure():
    from vlacompile.compare.parity import parity_rows

    def output(name, used, passed=True):
        return {"name": name, "tolerance": "t", "max_abs": used, "mean_abs": used, "cosine": 1.0, "used": used,
                "worst_used": used, "worst_sample_name": "s.png", "margin": 1 - used, "passed": passed,
                "verdict": "pass" if passed else "FAIL"}

    outputs = [output("offset", 0.0), output("k_0", 0.2), output("v_0", 1.5, passed=False), output("k_1", 0.4),
               output("v_1", 0.1)]
    parity = {"graphs": [{"graph": "prefix", "precision": "fp16", "outputs": outputs}], "pipelines": []}
    assert [r[2] for r in parity_rows(parity)] == ["offset", "k_0", "v_0", "k_1", "v_1"]
    assert [(r[2], r[-1]) for r in parity_rows(parity, fold=4)] == [("v_0", "FAIL"),
                                                                    ("4 outputs pass, worst k_1", "pass")]
