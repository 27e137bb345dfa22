"""Flow matching: the Euler loop against a direct evaluation, the prefix cache against the joint forward."""

import copy
import math
from dataclasses import replace

import pytest
import torch

from vlacompile.models.pi0.sampler import flow_times, time_embedding


@pytest.fixture(scope="module")
def prefix(pi0_tiny, pi0_inputs):
    x = pi0_inputs
    with torch.no_grad():
        return pi0_tiny.model.embed_prefix(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"])


def test_prefix_cache_once_equals_the_joint_forward(pi0_tiny, pi0_inputs, prefix):
    model, (h, valid), state = pi0_tiny.model, prefix, pi0_inputs["state"]
    x_t = pi0_tiny.noise(1)
    with torch.no_grad():
        cache = model.prefix_kv(h, valid)
        for t in (1.0, 0.55, 0.1):
            tt = torch.tensor([t])
            cached, joint = model.velocity(cache, state, x_t, tt), model.joint_velocity(h, valid, state, x_t, tt)
            torch.testing.assert_close(cached, joint, atol=1e-5, rtol=1e-5)


def test_velocity_depends_on_time_and_observation(pi0_tiny, pi0_inputs, prefix):
    """Guards the tests above and below against a degenerate velocity field."""
    model, (h, valid), state = pi0_tiny.model, prefix, pi0_inputs["state"]
    x_t = pi0_tiny.noise(1)
    with torch.no_grad():
        cache = model.prefix_kv(h, valid)
        v = model.velocity(cache, state, x_t, torch.tensor([0.5]))
        other_t = model.velocity(cache, state, x_t, torch.tensor([0.9]))
        other_prefix = model.velocity(model.prefix_kv(h.flip(1), valid), state, x_t, torch.tensor([0.5]))
    assert v.abs().mean() > 0.1
    assert (v - other_t).abs().mean() > 1e-2 and (v - other_prefix).abs().mean() > 1e-2


def test_euler_loop_matches_a_direct_step_by_step_evaluation(pi0_tiny, pi0_inputs, prefix):
    model, (h, valid), x = _at_scale(pi0_tiny.model, 1.0), prefix, pi0_inputs  # pi0's: x at t = 1 is the noise
    noise = pi0_tiny.noise(7)
    expected = noise.clone()
    with torch.no_grad():
        for k in range(10):  # x <- x - 0.1 v(x, t) at t = 1.0, 0.9, ..., 0.1, no cache
            t = torch.tensor([(10 - k) / 10])
            expected = expected - 0.1 * model.joint_velocity(h, valid, x["state"], expected, t)
        sampled = model(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"], x["state"], noise)
    torch.testing.assert_close(sampled, expected, atol=1e-5, rtol=1e-5)
    assert (sampled - noise).abs().mean() > 0.1  # the loop moved the sample


def _at_scale(model, scale: float):
    out = copy.deepcopy(model)
    out.cfg = replace(model.cfg, flow=replace(model.cfg.flow, noise_scale=scale))
    return out


def test_noise_scale_is_the_start_of_the_flow_and_nothing_else(pi0_tiny, pi0_inputs):
    """Sampling at temperature s from noise n is pi0's sampler (temperature 1) from s * n; at 0 the
    noise does not matter. pi0-tiny samples at 0, pi0-base at pi0's 1."""
    from vlacompile.models.pi0.config import PRESETS

    x = pi0_inputs
    args = (x["pixels"], x["image_valid"], x["ids"], x["ids_valid"], x["state"])
    noise, other = pi0_tiny.noise(7), pi0_tiny.noise(8)
    assert pi0_tiny.cfg.flow.noise_scale == 0.0 and PRESETS["pi0-base"].flow.noise_scale == 1.0
    with torch.no_grad():
        half, one, zero = (_at_scale(pi0_tiny.model, s) for s in (0.5, 1.0, 0.0))
        assert torch.equal(half(*args, noise), one(*args, noise * 0.5))
        assert torch.equal(zero(*args, noise), zero(*args, other))
        assert torch.equal(zero(*args, noise), one(*args, torch.zeros_like(noise)))
        assert (one(*args, noise) - one(*args, other)).abs().mean() > 1e-2  # the noise matters at 1


def test_flow_times_go_from_noise_to_data():
    assert flow_times(10) == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])


def test_time_embedding_is_pi0s_sinusoid():
    # dim 4: fractions 0 and 1, so periods 4e-3 and 4.0; [sin, sin, cos, cos]. t is a float32 tensor, as
    # in LeRobot, and the angle (about 471 rad here) is formed in float64: float32 would be off by ~3e-5.
    t = float(torch.tensor(0.3))
    angles = [2 * math.pi * t / 4e-3, 2 * math.pi * t / 4.0]
    expected = [math.sin(a) for a in angles] + [math.cos(a) for a in angles]
    got = time_embedding(torch.tensor([t]), 4, 4e-3, 4.0)[0]
    assert got.dtype == torch.float32 and got.tolist() == pytest.approx(expected, abs=1e-6)


class DropPadding(torch.nn.Module):
    """A token selector that removes every masked prefix token before `layer`, keeping positions."""

    def __init__(self, layer: int):
        super().__init__()
        self.layer = layer

    def forward(self, stack, h_in, h, valid, pos, allowed, rope):
        keep = valid[0]
        return h[:, keep], valid[:, keep], pos[:, keep], None  # no key bias (passes.family)


def test_selector_between_layers_with_shorter_caches_after_it(pi0_tiny, pi0_inputs):
    """Masked tokens are never read, so removing them at layer 3 changes nothing, while the cache of
    layers 3.. is shorter: the expert reads caches of different lengths."""
    model, x = pi0_tiny.model, pi0_inputs
    args = (x["pixels"], x["image_valid"], x["ids"], x["ids_valid"], x["state"], pi0_tiny.noise(2))
    reference = model(*args)
    model.selector = DropPadding(3)
    try:
        with torch.no_grad():
            cache = model.prefix_kv(*model.embed_prefix(*args[:4]))
        selected = model(*args)
    finally:
        model.selector = None
    kept = int(x["ids_valid"].sum()) + 256  # one camera of two, the real prompt tokens
    assert [k.shape[2] for k in cache.keys[2:4]] == [pi0_tiny.cfg.prefix_len, kept]
    torch.testing.assert_close(selected, reference, atol=1e-5, rtol=1e-5)
