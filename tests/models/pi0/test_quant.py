"""pi0 int8: the same quantizer and gates as CogACT, with pi0's groups and islands; the recipe
keeps float every group whose graph would fail its own parity gate (the prefix's K/V cache)."""

import numpy as np
import onnx
import pytest

from vlacompile.compare.lint import lint
from vlacompile.runtime import manifest

from ...conftest import CALIB
from .test_export import _compressed


@pytest.fixture(scope="module")
def trained():
    from vlacompile.models import resolve

    return resolve("pi0-tiny")  # the shipped, trained weights: what a user quantizes


@pytest.fixture(scope="module")
def rewritten(trained):
    return _compressed(trained, "kv")


@pytest.fixture(scope="module")
def int8_graphs(trained, rewritten, tmp_path_factory):
    from vlacompile.data.calib import load_calib, split_heldout
    from vlacompile.export import ExportConfig, export
    from vlacompile.models.pi0 import export as pi0_export
    from vlacompile.passes import CompressConfig
    from vlacompile.quant import QuantConfig

    calib, heldout = split_heldout(load_calib(CALIB))
    trace = pi0_export.reference_tensors(trained, rewritten, heldout[0], trained.noise(0))
    provenance = {"compile": CompressConfig().to_json(), "passes": [], "calibration": {}}
    config = ExportConfig(("fp32", "int8"), quant=QuantConfig(method="max"))
    return export(trained, rewritten, tmp_path_factory.mktemp("pi0q") / "graphs", config, trace, provenance,
                  progress=False, data=(calib[:8], heldout[:4], CALIB)).folder


def test_the_recipe_quantizes_only_groups_whose_graph_passes_its_gate(int8_graphs):
    q = manifest.read(int8_graphs)["quantization"]["int8"]
    groups = q["evidence"]["groups"]
    assert set(groups) == {"vision_attention", "vision_mlp", "projector", "vlm_attention", "vlm_mlp",
                           "expert_attention", "expert_mlp"}
    assert {g: r["graph"] for g, r in groups.items()} == {
        "vision_attention": "vision", "vision_mlp": "vision", "projector": "vision", "vlm_attention": "prefix",
        "vlm_mlp": "prefix", "expert_attention": "expert", "expert_mlp": "expert"}
    for group, row in groups.items():
        assert (group in q["recipe"]["quantize"]) <= row["graph_gate"]["passed"], group
    assert q["recipe"]["quantize"], "nothing quantized"
    assert {"norms", "softmax", "token_scoring", "flow", "suffix_io"} <= set(q["islands"])


def test_int8_graphs_lint_clean_with_islands_float_and_pass_their_gates(trained, rewritten, int8_graphs):
    from vlacompile.compare.validate import validate
    from vlacompile.data.calib import load_calib, spread

    islands = manifest.read(int8_graphs)["quantization"]["int8"]["islands"]
    for graph in ("vision", "prefix", "expert"):
        assert lint(int8_graphs / f"{graph}.int8.onnx", islands), graph
    model = onnx.load(str(int8_graphs / "expert.int8.onnx"))
    produced_by = {o: n.op_type for n in model.graph.node for o in n.output}
    suffix = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and "_proj" in n.name
              and n.name.split("/")[2].split("_")[0] in ("state", "action")]
    assert suffix and all(produced_by.get(i) != "DequantizeLinear" for n in suffix for i in n.input)
    assert any(t == "DequantizeLinear" for t in produced_by.values())  # the expert's own layers are quantized
    samples = [s for s in spread(load_calib(CALIB), 4)]
    result = validate(int8_graphs, trained, rewritten, samples, ["int8"], progress=False)
    assert result, [p.to_json() for p in result.graphs + result.pipelines if not p]
    (actions,) = [o for p in result.pipelines for o in p.outputs]
    assert actions.cosine >= 0.99 and actions.mean_abs > 1e-5  # quantization really ran


def test_the_runtime_runs_int8_like_fp32(int8_graphs):
    from PIL import Image

    from vlacompile.runtime import GraphPipeline

    image = Image.open(CALIB / "images" / "ep03_step30.png").convert("RGB")
    state = np.array([0.2, 0.38, 0.35, 0.0, 1.0], np.float32)
    out = {}
    for precision in ("fp32", "int8"):
        with GraphPipeline(int8_graphs, precision=precision) as pipe:
            out[precision] = pipe.predict([image], "put the red block into the bowl", state=state, seed=3)
    a, b = (np.asarray(out[p], np.float64).ravel() for p in ("fp32", "int8"))
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.99 and not np.array_equal(a, b)
