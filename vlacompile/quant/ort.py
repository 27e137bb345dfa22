"""The quantizer: ONNX Runtime's `quantize_static` in QDQ format, set up for TensorRT's explicit form.

Chosen over NVIDIA ModelOpt's ONNX PTQ by measurement (docs/BENCHMARKS.md, "Quantization library"):
it ships with the onnxruntime already pinned, needs nothing more, and gives the same graph form.

TensorRT's explicit quantization wants (and the lint checks):
- symmetric scales, zero point 0, int8 or float8 E4M3: ActivationSymmetric / WeightSymmetric;
- weights per output channel (axis 1 of a MatMul's [in, out] weight, axis 0 of a Conv's), activations
  per tensor: per_channel with QDQOpTypePerChannelSupportToAxis;
- QDQ on the inputs of the GEMMs only, not on their outputs (OpTypesToExcludeOutputQuantization):
  an output QDQ would round the residual stream too;
- biases left float (QuantizeBias off): TensorRT dequantizes no int32.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from pathlib import Path

INT8_METHODS = ("max", "entropy", "percentile")
FP8_METHOD = "distribution"  # the only calibration ONNX Runtime offers for float8
# ONNX Runtime's calibrators, with TensorRT's own entropy setting: quantize_static builds the
# entropy calibrator with 128 histogram bins for 128 quantized bins, which leaves one candidate
# threshold, the maximum (measured: identical scales to max). TensorRT's entropy calibrator
# (IInt8EntropyCalibrator2) searches 2048 bins; percentile keeps ONNX Runtime's 99.999 of 2048 bins.
CALIBRATORS = {"max": ("MinMax", {}), "entropy": ("Entropy", {"num_bins": 2048, "num_quantized_bins": 128}),
               "percentile": ("Percentile", {"num_bins": 2048, "percentile": 99.999}),
               FP8_METHOD: ("Distribution", {})}


def version() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} (onnxruntime.quantization.quantize_static, QDQ)"


def _reader(feeds: list[dict]):
    from onnxruntime.quantization import CalibrationDataReader

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    return Feeds()


@contextlib.contextmanager
def _quiet():
    """quantize_static logs a pre-processing hint and prints histogram banners."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _external(graph: Path) -> bool:
    """Weights over 2 GB live in `<graph>.data` (export.onnx); quantized graphs follow the same rule."""
    return Path(f"{graph}.data").is_file()


def _copy(src: Path, dst: Path) -> None:
    """A graph with nothing to quantize, under the quantized name (its external data renamed with it)."""
    if not _external(src):
        shutil.copyfile(src, dst)
        return
    import onnx

    model = onnx.load(str(src))
    onnx.save(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
              location=f"{Path(dst).name}.data")


def _unshare(src: Path, nodes: list[str], scratch: Path) -> Path:
    """`src`, or a copy of it in which every float node that reads a weight a quantized node also
    reads gets its own copy of that weight. quantize_static replaces a quantized weight by Q -> DQ
    for all its readers, so a shared weight would feed the token-scoring island (which reuses layer
    K-1's q / k weights, shared since the exporter dedups constants) a dequantized tensor."""
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    graph, chosen = model.graph, set(nodes)
    constants = {t.name: t for t in graph.initializer}
    quantized = {n.input[1] for n in graph.node if n.name in chosen and len(n.input) > 1}
    copies = {}
    for node in graph.node:
        if node.name in chosen:
            continue
        for i, name in enumerate(node.input):
            if name in quantized and name in constants:
                if name not in copies:
                    copies[name] = f"{name}__float"
                    copy = onnx.TensorProto()
                    copy.CopyFrom(constants[name])
                    copy.name = copies[name]
                    graph.initializer.append(copy)
                node.input[i] = copies[name]
    if not copies:
        return src
    if _external(src):  # the copies point into the source's data file: load it to write one of our own
        onnx.load_external_data_for_model(model, str(Path(src).parent))
    out = Path(scratch) / f"{Path(src).stem}.unshared.onnx"
    onnx.save(model, str(out), save_as_external_data=_external(src), all_tensors_to_one_file=True,
              location=f"{out.name}.data")
    return out


def calibrate(src: Path, feeds: list[dict], method: str, cache: Path) -> None:
    """Write `cache`: the range of every GEMM input and output of `src` over `feeds`, by `method`."""
    import tempfile

    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    name, options = CALIBRATORS[method]
    with tempfile.TemporaryDirectory(prefix=".calibrate.", dir=Path(cache).parent) as scratch, _quiet():
        calibrator = create_calibrator(Path(src), ["MatMul", "Gemm", "Conv"], str(Path(scratch) / "augmented.onnx"),
                                       getattr(CalibrationMethod, name), use_external_data_format=_external(src),
                                       extra_options={"symmetric": True, **options})
        calibrator.collect_data(_reader(feeds))
        save_tensors_data(calibrator.compute_data(), cache)


def quantize(src: Path, dst: Path, nodes: list[str], feeds: list[dict], precision: str, method: str,
             cache: Path) -> None:
    """Write `dst`: `src` with `nodes` (GEMMs) quantized, calibrated on `feeds` (the graph's inputs).
    `cache`: ranges computed once per (graph, inputs) and reused by every recipe of that graph."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not nodes:  # quantize_static reads an empty list as "every node"
        _copy(src, dst)
        return
    if not Path(cache).is_file():
        calibrate(src, feeds, method, cache)
    src = _unshare(src, nodes, Path(cache).parent)
    qtype = QuantType.QInt8 if precision == "int8" else QuantType.QFLOAT8E4M3FN
    with _quiet():
        quantize_static(str(src), str(dst), None, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["MatMul", "Gemm", "Conv"], nodes_to_quantize=list(nodes),
                        per_channel=True, activation_type=qtype, weight_type=qtype,
                        calibrate_method=getattr(CalibrationMethod, CALIBRATORS[method][0]),
                        calibration_cache_path=str(cache), use_external_data_format=_external(src),
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                       "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm", "Conv"],
                                       "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}})
