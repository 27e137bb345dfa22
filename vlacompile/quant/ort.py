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


def quantize(src: Path, dst: Path, nodes: list[str], feeds: list[dict], precision: str, method: str,
             cache: Path) -> None:
    """Write `dst`: `src` with `nodes` (GEMMs) quantized, calibrated on `feeds` (the graph's inputs).
    `cache`: ranges computed once per (graph, inputs) and reused by every recipe of that graph."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not nodes:  # quantize_static reads an empty list as "every node"
        shutil.copyfile(src, dst)
        return
    qtype = QuantType.QInt8 if precision == "int8" else QuantType.QFLOAT8E4M3FN
    calibration = {"max": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                   "percentile": CalibrationMethod.Percentile, FP8_METHOD: CalibrationMethod.Distribution}[method]
    with _quiet():
        quantize_static(str(src), str(dst), _reader(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["MatMul", "Gemm", "Conv"], nodes_to_quantize=list(nodes),
                        per_channel=True, activation_type=qtype, weight_type=qtype, calibrate_method=calibration,
                        calibration_cache_path=str(cache),
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                       "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm", "Conv"],
                                       "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}})
