"""int8 / fp8 graphs: TensorRT's explicit-quantization form, calibrated through the pipeline,
within the int8 gates of the PyTorch model, islands float, and a recipe that answers to its evidence."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from vlacompile.compare.lint import lint
from vlacompile.runtime import manifest

from ..conftest import CALIB


def _nodes(path, op):
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op]


def _constants(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def _quantized(int8_graphs) -> list[str]:
    """The graphs in which the measured recipe quantizes some GEMM (on the shipped default with max
    calibration, the vision graph stays float: quant/confirm.py)."""
    record = manifest.read(int8_graphs)["quantization"]["int8"]["graphs"]
    quantized = [g for g, r in record.items() if r["quantized"]]
    assert len(quantized) >= 2, record
    return quantized


def test_int8_graphs_are_symmetric_per_channel_weights_per_tensor_activations(int8_graphs):
    for graph in ("vision", "llm", "dit"):
        path = int8_graphs / f"{graph}.int8.onnx"
        consts = _constants(path)
        dq = _nodes(path, "DequantizeLinear")
        assert bool(dq) == (graph in _quantized(int8_graphs)), f"{graph}: {len(dq)} DequantizeLinear nodes"
        for node in dq:
            x, scale, zero = node.input
            assert consts[zero].dtype == np.int8 and not consts[zero].any()
            assert (consts[scale] > 0).all()
            if x in consts:  # a weight: int8, one scale per output channel (MatMul weight [in, out]: axis 1)
                assert consts[x].dtype == np.int8 and consts[scale].size == consts[x].shape[1]
                assert [a.i for a in node.attribute if a.name == "axis"] == [1]
            else:  # an activation: one scale
                assert consts[scale].size == 1
        assert lint(path, manifest.read(int8_graphs)["quantization"]["int8"]["islands"])


def test_int8_graphs_store_each_quantized_weight_in_a_quarter_of_its_bytes(int8_graphs):
    """Each int8 weight byte replaced four float bytes, so the int8 graphs are smaller by three times
    their int8 weight bytes, less the scales and Q / DQ nodes around them, which cost less than a
    further third of those bytes. What stays float (the recipe's excluded groups, the islands, tables
    and biases) is what keeps the tiny model's ratio above a quarter (docs/BENCHMARKS.md)."""
    graphs = ("vision", "llm", "dit")
    size = lambda p: sum((int8_graphs / f"{g}.{p}.onnx").stat().st_size for g in graphs)  # noqa: E731
    int8_bytes = sum(numpy_helper.to_array(t).nbytes for g in graphs
                     for t in onnx.load(str(int8_graphs / f"{g}.int8.onnx")).graph.initializer
                     if t.data_type == TensorProto.INT8)
    assert int8_bytes > 0.2 * size("fp32") / 4  # a recipe that quantizes a fifth of the float bytes or more
    assert size("int8") < size("fp32") - 3 * int8_bytes + int8_bytes / 3


def test_islands_stay_float(int8_graphs):
    """The token-selection scoring, the LLM layers before it (selected at layer 2: their output is
    what it ranks) and the action head's in / out projections read float weights and float
    activations; so does every softmax and norm (the lint checks those by op type)."""
    island = manifest.read(int8_graphs)["quantization"]["int8"]["islands"]["selection_inputs"]
    assert island["modules"] == ["llm_backbone.llm.model.layers.0", "llm_backbone.llm.model.layers.1"]
    for graph, scopes in (("llm", ("/llm_backbone/selector/", "/llm_backbone/layers.0/", "/llm_backbone/layers.1/")),
                          ("dit", ("/denoiser/x_embedder/", "/denoiser/z_embedder/", "/denoiser/final_layer/"))):
        model = onnx.load(str(int8_graphs / f"{graph}.int8.onnx"))
        produced_by = {o: n.op_type for n in model.graph.node for o in n.output}
        island_gemms = [n for n in model.graph.node if n.op_type == "MatMul" and n.name.startswith(scopes)]
        assert island_gemms, f"{graph}: no island GEMMs found by {scopes}"
        for node in island_gemms:
            assert all(produced_by.get(i) != "DequantizeLinear" for i in node.input), node.name


def test_int8_passes_its_gates_against_pytorch(tiny, compiled, int8_graphs):
    from vlacompile.compare.validate import validate
    from vlacompile.data.calib import load_calib, spread

    result = validate(int8_graphs, tiny, compiled.model, spread(load_calib(CALIB), 4), ["int8"], progress=False)
    assert result, json.dumps(result.to_json())[:3000]
    quantized = _quantized(int8_graphs)
    for parity in result.graphs + result.pipelines:
        (out,) = parity.outputs
        assert out.cosine >= 0.99 and out.mean_abs <= 0.05
        if parity.graph in [*quantized, "pipeline"]:  # quantization really ran: not the fp32 graph renamed
            assert out.mean_abs > 1e-4, parity.graph


def test_calibration_runs_through_the_quantized_pipeline(tiny, compiled, int8_graphs):
    """In the first quantized graph that follows a quantized graph (the dit after the llm when the
    vision graph stays float), the last quantized normed activation's scale is max |x| / 127 of that
    tensor over the calibration set, where x comes from the *int8* graph before it (not its fp32
    twin). (The llm's layers 0-1 feed the token selection and stay float: the selection_inputs island.)"""
    from vlacompile.quant.feeds import pipeline_inputs, run_graph, session

    order, quantized = ["vision", "llm", "dit"], _quantized(int8_graphs)
    up, down = next((a, b) for a, b in zip(order, order[1:]) if a in quantized and b in quantized)
    path = int8_graphs / f"{down}.int8.onnx"
    consts = _constants(path)
    # the last normed activation quantized: it depends on every input token (the dit's first norm,
    # per token, may take its maximum on a noise token that no cognition feature reaches)
    q = [n for n in _nodes(path, "QuantizeLinear") if n.input[0] not in consts and "norm" in n.input[0].lower()][-1]
    scale = float(consts[q.input[1]])
    fp32 = onnx.load(str(int8_graphs / f"{down}.fp32.onnx"))
    fp32.graph.output.append(onnx.helper.make_tensor_value_info(q.input[0], TensorProto.FLOAT, None))
    probe = int8_graphs.parent / "probe.onnx"
    onnx.save(fp32, str(probe))
    inputs = pipeline_inputs(tiny, compiled.calib_set)
    for graph in order[:order.index(up)]:  # what the graphs before `up` give, at their precision
        precision = "int8" if graph in quantized else "fp32"
        inputs = run_graph(session(int8_graphs / f"{graph}.{precision}.onnx", precision), inputs)

    def expected(up_precision):
        fed = run_graph(session(int8_graphs / f"{up}.{up_precision}.onnx", up_precision), inputs)
        return max(np.abs(t[q.input[0]]).max() for t in run_graph(session(probe, "fp32"), fed)) / 127

    assert scale == pytest.approx(expected("int8"), rel=1e-5)
    assert scale != pytest.approx(expected("fp32"), rel=1e-5)


def test_the_manifest_records_method_recipe_and_evidence(int8_graphs):
    q = manifest.read(int8_graphs)["quantization"]["int8"]
    from vlacompile.data.calib import load_calib, split_heldout

    calibration = split_heldout(load_calib(CALIB))[0]  # the shipped set less its held-out episodes (48 of 60)
    assert q["method"] == "max" and q["calibration"]["samples"] == len(calibration)
    groups = q["evidence"]["groups"]
    assert set(groups) == {"vision_attention", "vision_mlp", "projector", "llm_attention", "llm_mlp", "dit_blocks"}
    assert {g: r["graph"] for g, r in groups.items()} == {
        "vision_attention": "vision", "vision_mlp": "vision", "projector": "vision", "llm_attention": "llm",
        "llm_mlp": "llm", "dit_blocks": "dit"}
    assert q["evidence"]["recipe"]["min_cosine"] >= 0.99
    assert {"norms", "softmax", "token_scoring", "ddim", "action_head_io"} <= set(q["islands"])


def _sensitivity_inputs(tiny, compiled, int8_graphs):
    from vlacompile.models import export_declaration
    from vlacompile.quant.chain import run_chain
    from vlacompile.quant.feeds import pipeline_inputs
    from vlacompile.quant.targets import plan

    family = export_declaration(tiny)
    sources = {g: int8_graphs / f"{g}.fp32.onnx" for g in ("vision", "llm", "dit")}
    plans = {g: plan(g, onnx.load(str(p)), compiled.model, family.group_of, family.ISLANDS) for g, p in sources.items()}
    calib, held = pipeline_inputs(tiny, compiled.calib_set[:8]), pipeline_inputs(tiny, compiled.heldout[:3], 99)
    return sources, plans, calib, held, run_chain(sources, dict.fromkeys(sources, "fp32"), held)


def test_a_group_that_overspends_the_budget_stays_float(tiny, compiled, int8_graphs, tmp_path, monkeypatch):
    """With a budget far below what the most damaging group costs, that group is kept float
    (whole: groups are not refined GEMM by GEMM here, see the next test)."""
    from vlacompile.models import export_declaration
    from vlacompile.quant import sensitivity

    monkeypatch.setattr(sensitivity, "MAX_REFINE", 0)
    sources, plans, calib, held, reference = _sensitivity_inputs(tiny, compiled, int8_graphs)
    recipe = sensitivity.measure(sources, plans, tuple(export_declaration(tiny).GROUPS), calib, held, "int8", "max",
                                 tmp_path, gate=1 - 2e-5, reference=reference)
    rows = recipe.evidence["groups"]
    worst = min(rows, key=lambda g: rows[g]["min_cosine"])
    assert 1 - rows[worst]["min_cosine"] > 1e-5 and worst not in recipe.quantize
    assert all(1 - rows[g]["min_cosine"] <= 1e-5 for g in recipe.quantize)


def test_a_group_whose_damage_sits_in_one_gemm_joins_with_that_gemm_float(tiny, compiled, int8_graphs, tmp_path):
    """The trained default's vision attention owes its damage to few GEMMs (DINOv2's first qkv):
    with a budget of half the group's damage, the group joins the recipe with its most damaging
    GEMM float, and the rest of it, quantized through the export path, costs a tenth of the budget."""
    from vlacompile.quant import sensitivity
    from vlacompile.quant.chain import cosines, quantize_chain, run_chain

    sources, plans, calib, held, reference = _sensitivity_inputs(tiny, compiled, int8_graphs)
    group = ("vision_attention",)
    whole = sensitivity.measure(sources, plans, group, calib, held, "int8", "max", tmp_path, 0.0, reference)
    damage = whole.evidence["groups"]["vision_attention"]["damage"]
    budget = damage / 2
    recipe = sensitivity.measure(sources, plans, group, calib, held, "int8", "max", tmp_path, 1 - 2 * budget,
                                 reference)
    row = recipe.evidence["groups"]["vision_attention"]
    assert recipe.quantize == group and recipe.keep_float == tuple(row["keep_float"])
    worst = max(row["modules"], key=lambda m: row["modules"][m]["damage"])
    assert worst in recipe.keep_float and len(recipe.keep_float) < row["nodes"]
    nodes = plans["vision"].nodes(group, recipe.keep_float)
    assert len(nodes) == row["nodes"] - len(recipe.keep_float)
    out = {"vision": tmp_path / "vision.rest.onnx"}
    fp32 = run_chain(sources, dict.fromkeys(sources, "fp32"), calib)
    quantize_chain({"vision": sources["vision"]}, out, {"vision": nodes}, fp32, "int8", "max", tmp_path)
    got = run_chain({**sources, **out}, {"vision": "int8", "llm": "fp32", "dit": "fp32"}, held)
    assert 1 - cosines(got, reference).min() <= sensitivity.PARTIAL * budget + 1e-9


def test_a_recipe_that_fails_the_pipeline_gate_on_a_calibration_image_is_backed_off(tiny, compiled, int8_graphs,
                                                                                     tmp_path, monkeypatch):
    """confirm.py: a recipe that passes the pipeline's actions gate on every input stays as it is.
    Under a gate tighter than the all-groups recipe meets, groups leave one at a time, each the one
    whose removal left the highest lowest cosine, until the recipe passes, and those it passes with
    come back; quantized afresh, the result meets that gate on every input."""
    import dataclasses

    from vlacompile.compare import parity
    from vlacompile.models import export_declaration
    from vlacompile.quant import confirm
    from vlacompile.quant.chain import cosines, quantize_chain, run_chain
    from vlacompile.quant.recipe import Recipe

    sources, plans, calib, _, _ = _sensitivity_inputs(tiny, compiled, int8_graphs)
    wide = confirm.wide_inputs(tiny, compiled.heldout[:3], draws=2)
    reference = run_chain(sources, dict.fromkeys(sources, "fp32"), wide.tensors)
    everything = Recipe(tuple(export_declaration(tiny).GROUPS), source="sensitivity")
    args = (sources, plans, calib, wide, reference, "int8", "max", tmp_path)
    kept = confirm.confirm(everything, *args)
    (only,) = kept.evidence["confirm"]["steps"]
    assert kept.quantize == everything.quantize and only["passed"] and kept.evidence["confirm"]["samples"] == 6

    strict = dataclasses.replace(parity.TOLERANCES["int8"], min_cosine=1 - (1 - only["min_cosine"]) / 2)
    monkeypatch.setitem(parity.TOLERANCES, "int8", strict)
    backed = confirm.confirm(everything, *args)
    record = backed.evidence["confirm"]
    steps, restored = record["steps"], {r["restored"]: r["passed"] for r in record["restores"]}
    assert not steps[0]["passed"] and steps[-1]["passed"] and record["final"]["passed"]
    for step in steps[1:]:  # each removed group is tried back, and is in the recipe if it passed there
        assert step["min_cosine"] == max(step["tried"].values())
        assert (step["dropped"] in backed.quantize) == restored[step["dropped"]]
    assert set(backed.quantize) == set(everything.quantize) - {s["dropped"] for s in steps[1:]} | {
        g for g, passed in restored.items() if passed}
    files = {g: tmp_path / f"{g}.check.onnx" for g in sources}
    nodes = {g: plans[g].nodes(backed.quantize, backed.keep_float) for g in sources}
    quantize_chain(sources, files, nodes, calib, "int8", "max", tmp_path)
    got = run_chain(files, {g: "int8" if nodes[g] else "fp32" for g in sources}, wide.tensors)
    assert cosines(got, reference).min() >= strict.min_cosine


def test_fp8_graphs_lint_clean_and_compute_the_vision_tokens_in_onnx_reference(tiny, compiled, trace_tensors,
                                                                               tmp_path):
    """ONNX Runtime's CPU provider has no fp8: ONNX's reference evaluator runs one graph instead."""
    from onnx.reference import ReferenceEvaluator

    from vlacompile.export import ExportConfig, export
    from vlacompile.quant import QuantConfig, Recipe

    out = tmp_path / "graphs"
    recipe = Recipe(("vision_attention", "vision_mlp"))
    export(tiny, compiled.model, out, ExportConfig(("fp8",), quant=QuantConfig(recipe=recipe)), trace_tensors,
           compiled.provenance(), progress=False, data=compiled.quant_data())
    m = manifest.read(out)
    assert list(m["graphs"]) == ["fp8"] and not (out / "vision.fp32.onnx").exists()
    for graph in ("vision", "llm", "dit"):
        assert lint(out / f"{graph}.fp8.onnx", m["quantization"]["fp8"]["islands"])
    vision = out / "vision.fp8.onnx"
    zeros = [_constants(vision)[n.input[2]] for n in _nodes(vision, "DequantizeLinear")]
    assert zeros and all(z.dtype.name == "float8_e4m3fn" for z in zeros)
    got = ReferenceEvaluator(str(vision)).run(None, {"pixels": trace_tensors["pixels"]})[0]
    want = trace_tensors["visual_tokens"]
    cosine = float(got.ravel() @ want.ravel() / np.linalg.norm(got) / np.linalg.norm(want))
    assert cosine >= 0.99  # GR00T's FP8 backbone gate
    assert np.abs(got - want).max() > 1e-3  # and not the fp32 graph: E4M3 keeps 3 mantissa bits


def test_graphs_over_2_gb_quantize_with_their_weights_beside_them(tiny, compiled, trace_tensors, tmp_path,
                                                                   monkeypatch):
    """A 7.6 B model's graphs keep their weights in `<graph>.onnx.data`; so do their int8 forms,
    under their own names (the fp32 files, not asked for, are gone)."""
    import vlacompile.export.onnx as onnx_export
    from vlacompile.export import ExportConfig, export
    from vlacompile.quant import QuantConfig, Recipe

    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 1)  # as if every graph were over 2 GB
    out = tmp_path / "graphs"
    # the dit graph has nothing to quantize: copied, renamed; llm_attention's layer-1 q / k weights are
    # shared with the float token scoring, which gets its own copy beside the external data
    recipe = Recipe(("vision_mlp", "llm_attention"))
    export(tiny, compiled.model, out, ExportConfig(("int8",), quant=QuantConfig(recipe=recipe)), trace_tensors,
           compiled.provenance(), progress=False, data=compiled.quant_data())
    names = sorted(p.name for p in out.glob("*.onnx*"))
    assert names == ["dit.int8.onnx", "dit.int8.onnx.data", "llm.int8.onnx", "llm.int8.onnx.data",
                     "vision.int8.onnx", "vision.int8.onnx.data"]
    m = manifest.read(out)
    manifest.verify(out, m, manifest.needed_files(m))  # the .data files are hashed too
    assert lint(out / "llm.int8.onnx", m["quantization"]["int8"]["islands"])  # the scoring reads float weights
    assert {"dit.int8.onnx.data", "llm.int8.onnx.data"} <= set(m["files"])
    from vlacompile.runtime import GraphPipeline

    sample = compiled.heldout[0]
    with GraphPipeline(out, "int8") as pipe:
        got = pipe.predict_normalized(sample.load_image(), sample.instruction, tiny.noise(0).numpy())
    want = trace_tensors["actions"][0]  # the PyTorch model on the same image, prompt and noise
    assert float(got.ravel() @ want.ravel() / np.linalg.norm(got) / np.linalg.norm(want)) > 0.99


def test_the_quantization_record_is_part_of_the_manifest_schema(tmp_path):
    """Schema 2: int8 / fp8 graphs come with `quantization.<precision>`, which the digest covers."""
    from vlacompile.errors import UserError
    from vlacompile.runtime.pipeline import check_precision

    graphs = {"int8": {"vision": {"file": "vision.int8.onnx"}}}
    with pytest.raises(UserError, match="lists int8 graphs without their quantization record"):
        check_precision(tmp_path, {"graphs": graphs}, "int8")
    m = {"schema": manifest.SCHEMA, "graphs": graphs, "quantization": {"int8": {"method": "max"}}}
    check_precision(tmp_path, m, "int8")
    m["digest"] = manifest.digest(m)
    assert manifest.parse(json.dumps(m), tmp_path / "manifest.json") == m
    m["quantization"]["int8"]["method"] = "entropy"  # an edited record no longer matches the digest
    with pytest.raises(UserError, match="does not match its own digest"):
        manifest.parse(json.dumps(m), tmp_path / "manifest.json")
