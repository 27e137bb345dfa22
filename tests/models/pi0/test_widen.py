"""Growing a trained pi0-tiny into pi0-tiny-wide (models/pi0/widen.py) keeps what it computes."""

from __future__ import annotations

import pytest
import torch


def _velocities(policy, inputs, state: dict, ts=(1.0, 0.55, 0.1)):
    """The velocities of `policy`'s model holding `state`, and of its widened copy, at times `ts`."""
    from vlacompile.models.pi0.build import from_state
    from vlacompile.models.pi0.config import PRESETS
    from vlacompile.models.pi0.widen import widened

    old = policy.model.cfg
    narrow = from_state(old, state)
    wide = widened(narrow, PRESETS["pi0-tiny-wide"])
    assert wide.expert.norm.weight.shape[0] == 2 * narrow.expert.norm.weight.shape[0]
    x = torch.randn(1, old.horizon, old.max_action_dim, generator=torch.Generator().manual_seed(0))
    prefix = inputs["pixels"], inputs["image_valid"], inputs["ids"], inputs["ids_valid"]
    with torch.no_grad():
        caches = [m.prefix_kv(*m.embed_prefix(*prefix)) for m in (narrow, wide)]
        return [(narrow.velocity(caches[0], inputs["state"], x, torch.full((1,), t)),
                 wide.velocity(caches[1], inputs["state"], x, torch.full((1,), t))) for t in ts]


def test_the_widened_expert_computes_the_same_velocity_where_widening_is_exact(pi0_tiny, pi0_inputs):
    """With the time embedding's columns zero (the one part fitted rather than carried over), the new
    residual channels start at zero and the rescaled norms give the old ones their values: the same
    velocity to float precision."""
    state = {k: v.clone() for k, v in pi0_tiny.model.state_dict().items()}
    state["action_time_mlp_in.weight"][:, pi0_tiny.model.cfg.expert.width:] = 0
    for v0, v1 in _velocities(pi0_tiny, pi0_inputs, state):
        assert (v1 - v0).abs().max() < 1e-4 * v0.abs().max()


def test_the_shipped_pi0_tiny_widens_to_the_same_velocity(pi0_inputs):
    """On the trained model the ridge least-squares fit of the new time embedding's columns keeps the
    velocity to a cosine of 0.9999 (the synthetic draw's random time columns fit far worse: 0.84-0.93)."""
    from vlacompile.models.pi0.embedded import embedded_policy

    policy = embedded_policy()
    for v0, v1 in _velocities(policy, pi0_inputs, policy.model.state_dict()):
        assert torch.nn.functional.cosine_similarity(v0.flatten(), v1.flatten(), 0) > 0.9999


def test_widening_into_another_model_is_refused(pi0_tiny):
    from vlacompile.models.pi0.config import PRESETS
    from vlacompile.models.pi0.widen import widen_state

    with pytest.raises(ValueError, match="is not pi0-tiny with a wider expert"):
        widen_state(pi0_tiny.model.state_dict(), PRESETS["pi0-tiny"], PRESETS["pi0-base"])


def test_training_the_wide_preset_from_a_pi0_tiny_folder_grows_it(pi0_tiny, pi0_folder, tmp_path):
    """`vlacompile train --preset pi0-tiny-wide --init <a pi0-tiny folder>` starts from the widened
    model; the narrow preset refuses a wide folder in one line."""
    from vlacompile.errors import UserError
    from vlacompile.models import training_recipe
    from vlacompile.models.pi0.checkpoint import load_folder, save_folder
    from vlacompile.models.pi0.config import PRESETS
    from vlacompile.models.pi0.policy import Pi0Policy
    from vlacompile.models.pi0.widen import widened

    wide = training_recipe("pi0-tiny-wide").trained_model(pi0_folder)
    expected = widened(load_folder(pi0_folder).model, PRESETS["pi0-tiny-wide"]).state_dict()
    assert wide.cfg.name == "pi0-tiny-wide" and wide.training
    assert all(torch.allclose(v, expected[k], atol=1e-6) for k, v in wide.state_dict().items())
    p = pi0_tiny
    folder = save_folder(Pi0Policy(wide.eval(), p.tokenizer, p.statistics, "wide", p.cameras), tmp_path / "wide")
    with pytest.raises(UserError, match="a pi0-tiny-wide model; pi0-tiny trains from pi0-tiny or a narrower"):
        training_recipe("pi0-tiny").trained_model(folder)
