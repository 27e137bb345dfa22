"""The torch backend: the rewritten model's graphs in PyTorch, through the runtime's pipeline."""

import numpy as np
import torch

from vlacompile.backends.torch import pipeline


def _reference(tiny, compiled, sample, noise):
    pixels, ids = tiny.encode(sample.load_image(), sample.instruction)
    with torch.no_grad():
        return compiled.model(pixels, ids, noise)[0].numpy()


def test_fp32_on_cpu_gives_the_pytorch_actions(tiny, compiled):
    sample, noise = compiled.heldout[1], tiny.noise(4)
    with pipeline(tiny, compiled.model, "cpu", "fp32", compile=False) as pipe:
        got = pipe.predict_normalized(sample.load_image(), sample.instruction, noise.numpy())
    np.testing.assert_allclose(got, _reference(tiny, compiled, sample, noise), atol=1e-5)


def test_bf16_keeps_the_actions_close(tiny, compiled):
    sample, noise = compiled.heldout[1], tiny.noise(4)
    with pipeline(tiny, compiled.model, "cpu", "bf16", compile=False) as pipe:
        got = pipe.predict_normalized(sample.load_image(), sample.instruction, noise.numpy())
    want = _reference(tiny, compiled, sample, noise)
    cosine = got.ravel() @ want.ravel() / np.linalg.norm(got) / np.linalg.norm(want)
    assert 0.99 < cosine < 1.0 - 1e-7  # close, and really computed at reduced precision
