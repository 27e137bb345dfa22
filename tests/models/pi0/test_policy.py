"""Pi0Policy: inputs as the spec preprocesses them, seeds, un-normalization, and one-line refusals."""

import numpy as np
import pytest
import torch
from PIL import Image

from vlacompile.errors import UserError
from vlacompile.models.pi0.preprocess import image_array

STATE = np.linspace(-1, 1, 5)


def test_too_many_cameras_is_one_line(pi0_tiny, sample_image):
    with pytest.raises(UserError, match="got 3 camera images; pi0-tiny takes 1 to 2") as err:
        pi0_tiny.predict([sample_image] * 3, "pick up the red block", STATE)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("state", [np.zeros(6), np.zeros(32), np.zeros((1, 5))])
def test_wrong_state_shape_is_one_line(pi0_tiny, sample_image, state):
    with pytest.raises(UserError, match="takes a vector of 5 values") as err:
        pi0_tiny.predict([sample_image], "pick up the red block", state)
    assert "\n" not in str(err.value)


def test_empty_instruction_is_refused(pi0_tiny, sample_image):
    with pytest.raises(UserError, match="instruction is empty"):
        pi0_tiny.predict([sample_image], "  ", STATE)


def test_state_is_normalized_with_mean_std_and_zero_padded(pi0_tiny, pi0_inputs):
    s = pi0_tiny.statistics
    expected = (STATE - s.state_mean) / (s.state_std + 1e-8)
    got = pi0_inputs["state"][0].numpy()
    assert got.shape == (32,) and np.allclose(got[:5], expected, atol=1e-6) and not got[5:].any()


def test_an_absent_camera_is_masked_and_never_read(pi0_tiny, pi0_inputs):
    x = dict(pi0_inputs)
    assert x["image_valid"].tolist() == [[True, False]] and (x["pixels"][0, 1] == -1).all()
    noise = pi0_tiny.noise(0)
    reference = pi0_tiny.model(**x, noise=noise)
    x["pixels"] = x["pixels"].clone()
    x["pixels"][0, 1] = torch.rand(3, 224, 224)  # whatever the absent slot holds
    torch.testing.assert_close(pi0_tiny.model(**x, noise=noise), reference)


def test_noise_is_numpys_default_rng(pi0_tiny):
    expected = np.random.default_rng(11).standard_normal((50, 32), dtype=np.float32)
    assert pi0_tiny.noise(11).shape == (1, 50, 32) and np.array_equal(pi0_tiny.noise(11)[0].numpy(), expected)


def test_predict_unnormalizes_the_sampled_chunk(pi0_tiny, sample_image):
    args = ([sample_image], "move the orange near the cup", STATE)
    actions = pi0_tiny.predict(*args, seed=4)
    normalized = pi0_tiny.predict_normalized(*args, pi0_tiny.noise(4))[:, :7].numpy()
    s = pi0_tiny.statistics
    assert actions.shape == (50, 7) and np.allclose(actions, normalized * s.action_std + s.action_mean, atol=1e-6)
    assert np.array_equal(pi0_tiny.predict(*args, seed=4), actions)
    # pi0-tiny samples at temperature 0: its flow starts at 0 whatever the seed (test_sampler.py checks
    # that the noise matters at pi0's temperature 1).
    assert np.array_equal(pi0_tiny.predict(*args, seed=5), actions)


def test_instruction_and_image_change_the_actions(pi0_tiny, sample_image):
    base = pi0_tiny.predict([sample_image], "pick up the red block", STATE, seed=0)
    other_text = pi0_tiny.predict([sample_image], "push the teal can to the left", STATE, seed=0)
    other_image = pi0_tiny.predict([sample_image.rotate(90)], "pick up the red block", STATE, seed=0)
    assert np.abs(base - other_text).mean() > 1e-4 and np.abs(base - other_image).mean() > 1e-4


def test_resize_with_pad_keeps_aspect_and_pads_black_centered():
    image = Image.new("RGB", (100, 50), (255, 255, 255))  # 2:1 -> 224 x 112, bands of 56 rows
    x = image_array(image, 224)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert (x[:, :56] == -1).all() and (x[:, 168:] == -1).all() and (x[:, 56:168] == 1).all()
