"""Float islands every family shares (each family adds its own: models/<family>/quant.py).

An island is a set of op types and / or a regular expression over a graph node's name; the
quantizer never quantizes its GEMMs, and the TensorRT lint refuses an island node that reads a
dequantized tensor.
"""

SHARED = {
    "softmax": {"ops": ["Softmax"],
                "why": "every softmax: the exponentials of quantized scores saturate, and attention weights near "
                       "0 and 1 need float resolution"},
    "token_scoring": {"scope": r".*/selector/",
                      "why": "the static top-k token selection ranks near-tied scores: one quantization step can "
                             "swap which visual tokens are kept, a discrete change no later layer undoes"},
}
