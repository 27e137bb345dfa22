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
