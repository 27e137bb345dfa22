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


# QDQ rules. A small graph: x [4, 8] -> Q -> DQ -> MatMul with a DQ'd [8, 3] weight -> y [4, 3].
def _qdq_graph(tmp_path, zero=0, zero_type=TensorProto.INT8, act_scale=(0.1,), w_scale=(0.1, 0.2, 0.3), axis=1,
               then=None):
    import numpy as np
    from onnx import numpy_helper

    zp = lambda name, n: numpy_helper.from_array(  # noqa: E731
        np.full(n, zero, dtype=helper.tensor_dtype_to_np_dtype(zero_type)).reshape(() if n == 1 else (n,)), name)
    inits = [numpy_helper.from_array(np.ones((8, 3), np.int8), "w"),
             numpy_helper.from_array(np.asarray(w_scale, np.float32), "w_scale"), zp("w_zp", len(w_scale)),
             numpy_helper.from_array(np.asarray(act_scale, np.float32).reshape(() if len(act_scale) == 1 else -1),
                                     "x_scale"),
             zp("x_zp", len(act_scale))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x", axis=1),
             helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"], name="dq_x", axis=1),
             helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=axis),
             helper.make_node("MatMul", ["xd", "wd"], ["y"], name="gemm")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])]
    if then:  # an op reading the dequantized activation
        nodes.append(helper.make_node(then, ["xd"], ["z"], name="island"))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 8]))
    return _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])], outputs, inits)


def _messages(path, **kw):
    return [f.message for f in lint(path, **kw).findings]


def test_a_qdq_graph_in_tensorrt_form_passes(tmp_path):
    path = _qdq_graph(tmp_path)
    assert lint(path), _messages(path)


def test_qdq_graphs_tensorrt_cannot_build_are_rejected(tmp_path):
    assert any("quantized type UINT8" in m for m in _messages(_qdq_graph(tmp_path, zero_type=TensorProto.UINT8)))
    assert any("zero point is not 0" in m for m in _messages(_qdq_graph(tmp_path, zero=3)))
    assert any("not finite and positive" in m for m in _messages(_qdq_graph(tmp_path, w_scale=(0.1, -0.2, 0.3))))
    assert any("axis 2 is outside" in m for m in _messages(_qdq_graph(tmp_path, axis=2)))
    assert any("3 values for 8 channels" in m for m in _messages(_qdq_graph(tmp_path, axis=0)))
    per_channel_activation = _qdq_graph(tmp_path, act_scale=(0.1,) * 8)
    assert any("activation quantized per channel" in m for m in _messages(per_channel_activation))


def test_a_float_island_reading_a_dequantized_tensor_is_rejected(tmp_path):
    softmax = _qdq_graph(tmp_path, then="Softmax")  # an island in any graph
    assert any("island 'softmax' must stay float" in m for m in _messages(softmax))
    relu = _qdq_graph(tmp_path, then="Relu")
    assert lint(relu)  # not an island here
    # ...but one for a family whose islands name it (the manifest passes the family's islands)
    islands = {"mine": {"scope": r"isl", "why": "kept float on purpose"}}
    assert any("island 'mine' must stay float: kept float on purpose" in m for m in _messages(relu, islands=islands))
