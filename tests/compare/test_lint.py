"""The TensorRT-readiness lint: exported graphs pass; graphs TensorRT would reject do not."""

import onnx
from onnx import TensorProto, helper

from vlacompile.compare.lint import lint


def _save(tmp_path, nodes, inputs, outputs, initializers=(), name="g.onnx"):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _vec(name, dtype=TensorProto.FLOAT, n=4):
    return helper.make_tensor_value_info(name, dtype, [n])


def test_exported_graphs_pass(validated):
    assert len(validated.lint) == 6
    for report in validated.lint:
        assert report and report.nodes > 100, [str(f) for f in report.findings]


def test_a_supported_graph_passes(tmp_path):
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="relu")], [_vec("x")], [_vec("y")])
    assert lint(path)


def test_an_unsupported_operator_is_rejected(tmp_path):
    # Unique: listed as unsupported by TensorRT 10's ONNX parser, and its output shape depends on data.
    node = helper.make_node("Unique", ["x"], ["y"], name="unique")
    path = _save(tmp_path, [node], [_vec("x")], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    messages = [f.message for f in lint(path).findings if f.node == "unique"]
    assert any("not supported by TensorRT" in m for m in messages)
    assert any("depends on data" in m for m in messages)


def test_float64_is_rejected(tmp_path):
    nodes = [helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE, name="to_double"),
             helper.make_node("Cast", ["x64"], ["y"], to=TensorProto.FLOAT, name="back")]
    report = lint(_save(tmp_path, nodes, [_vec("x")], [_vec("y")]))
    assert not report
    assert any(f.node == "x64" and "float64" in f.message for f in report.findings)


def test_a_data_dependent_shape_is_rejected(tmp_path):
    # Reshape to a shape that is a graph input: the output shape is only known at run time.
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")]
    inputs = [_vec("x"), _vec("shape", TensorProto.INT64, 2)]
    report = lint(_save(tmp_path, nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]))
    assert any(f.node == "y" and "not static" in f.message for f in report.findings)


def test_topk_with_a_runtime_k_is_rejected(tmp_path):
    nodes = [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk")]
    inputs = [_vec("x"), _vec("k", TensorProto.INT64, 1)]
    outputs = [helper.make_tensor_value_info("v", TensorProto.FLOAT, None),
               helper.make_tensor_value_info("i", TensorProto.INT64, None)]
    report = lint(_save(tmp_path, nodes, inputs, outputs))
    assert any(f.node == "topk" and "build-time constant" in f.message for f in report.findings)
