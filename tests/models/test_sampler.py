"""DDIM + classifier-free guidance against hand-worked expectations."""

import math

import numpy as np
import torch

from vlacompile.models.cogact.config import SamplerConfig
from vlacompile.runtime.postprocess import unnormalize
from vlacompile.models.cogact.sampler import cosine_alphas_cumprod, ddim_steps, ddim_update, sample_actions


def test_schedule_is_respaced_squaredcos_cap_v2():
    steps = ddim_steps(SamplerConfig())
    assert [s.t for s in steps] == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0]
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    abar = cosine_alphas_cumprod(100)
    assert math.isclose(abar[0], f(0.01) / f(0.0), rel_tol=1e-12)
    # Without the 0.999 cap the product telescopes to f((t+1)/100) / f(0).
    assert math.isclose(abar[50], f(0.51) / f(0.0), rel_tol=1e-9)
    assert steps[0].alpha_bar_prev == abar[80] and steps[-1].alpha_bar_prev == 1.0


def test_ddim_step_with_the_true_noise_lands_on_the_previous_marginal():
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(16, 7, generator=g), torch.randn(16, 7, generator=g)
    for step in ddim_steps(SamplerConfig()):
        xt = math.sqrt(step.alpha_bar) * x0 + math.sqrt(1 - step.alpha_bar) * eps
        expected = math.sqrt(step.alpha_bar_prev) * x0 + math.sqrt(1 - step.alpha_bar_prev) * eps
        torch.testing.assert_close(ddim_update(xt, eps, step), expected, atol=1e-4, rtol=1e-4)


def test_guidance_scale_one_is_the_conditional_model_alone(tiny):
    net = tiny.model.action_model.net
    g = torch.Generator().manual_seed(0)
    cog, noise = torch.randn(1, net.z_embedder.linear.in_features, generator=g), torch.randn(1, 16, 7, generator=g)
    guided = sample_actions(net, cog, noise, SamplerConfig(cfg_scale=1.0))
    x = noise.clone()
    with torch.no_grad():
        for step in ddim_steps(SamplerConfig()):
            x = ddim_update(x, net(x, torch.tensor([float(step.t)]), cog[:, None]), step)
    # uncond + 1 * (cond - uncond) rounds differently from cond; DDIM amplifies it by up to 1/sqrt(abar).
    torch.testing.assert_close(guided, x, atol=1e-4, rtol=1e-4)


def test_guidance_extrapolates_away_from_the_unconditional_prediction(tiny):
    net = tiny.model.action_model.net
    uncond = net.z_embedder.uncondition.detach()
    noise = torch.randn(1, 16, 7, generator=torch.Generator().manual_seed(1))
    # Conditioning on the unconditional vector itself: guidance has nothing to amplify.
    a = sample_actions(net, uncond, noise, SamplerConfig(cfg_scale=1.5))
    b = sample_actions(net, uncond, noise, SamplerConfig(cfg_scale=4.0))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_unnormalize_hand_worked():
    stats = {"action": {"q01": [-1, 0, 0, 0, 0, 0, 0], "q99": [1, 2, 4, 0, 0, 0, 1],
                        "mask": [True, True, True, True, True, True, False]}}
    out = unnormalize(np.array([[0.5, 0.0, 3.0, -7.0, 0.0, 0.0, 0.49], [0, 0, 0, 0, 0, 0, 0.5]]), stats)
    np.testing.assert_allclose(out[0], [0.5, 1.0, 4.0, 0.0, 0.0, 0.0, 0.0])
    assert out[1, 6] == 1.0  # gripper threshold is >= 0.5, and the gripper is not un-normalized
