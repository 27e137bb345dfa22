"""Training pi0 from scratch: the flow-matching objective as specified, its shared prefix cache equal to
the joint forward, batches encoded as the policy encodes, and a few steps that lower the loss."""

import numpy as np
import pytest
import torch

from vlacompile.errors import UserError
from vlacompile.models.pi0.objective import Objective, flow_times, training_loss
from vlacompile.models.pi0.recipe import Pi0Recipe


@pytest.fixture(scope="module")
def frames():
    from vlacompile.sim.demos import episode_frames

    return episode_frames("put", 7, np.random.default_rng(0), chunk=50, every=6)[:4]


@pytest.fixture(scope="module")
def stats():
    from vlacompile.sim import demos
    from vlacompile.sim.tasks import episode_seeds

    return demos.statistics(episode_seeds("train", 20))


def test_flow_times_follow_beta_1_5_1_on_their_range():
    t = flow_times(200_000, torch.Generator().manual_seed(0))
    assert 0.001 <= t.min() and t.max() <= 1.0
    # Beta(1.5, 1): mean 1.5 / 2.5 = 0.6 and CDF t^1.5 (so P(t <= 0.25) = 0.125), before the rescale
    assert float(t.mean()) == pytest.approx(0.6 * 0.999 + 0.001, abs=3e-3)
    assert float((t <= 0.25 * 0.999 + 0.001).float().mean()) == pytest.approx(0.125, abs=3e-3)


def test_the_batch_is_what_the_policy_encodes(pi0_tiny, frames, stats):
    from PIL import Image

    recipe = Pi0Recipe(pi0_tiny.cfg, pi0_tiny.tokenizer)
    pixels, image_valid, ids, ids_valid, state, actions, _, patches, named = recipe.batch(frames, stats)
    assert patches.shape == (4, 0, 5) and named.shape == (4, 0)  # no loss reads labels: none
    s = recipe.statistics(stats)
    f = frames[1]
    policy = type(pi0_tiny)(pi0_tiny.model, pi0_tiny.tokenizer, s, "trained", pi0_tiny.cameras)
    x = policy.encode([Image.fromarray(f.image)], f.instruction, f.state)
    torch.testing.assert_close(pixels[1, 0], x["pixels"][0, 0])  # the first slot; the absent one is left out
    assert image_valid.all() and ids[1].tolist() == x["ids"][0].tolist()
    assert ids_valid[1].tolist() == x["ids_valid"][0].tolist()
    torch.testing.assert_close(state[1], x["state"][0])
    expected = (f.actions - s.action_mean) / (s.action_std + s.eps)
    np.testing.assert_allclose(actions[1, :, :7].numpy(), expected, atol=1e-5)
    assert actions.shape == (4, 50, 32) and not actions[..., 7:].any()


def hand_flow_loss(model, batch, r: int, seed: int, share: float = 0.0):
    """(flow loss, which draws started at temperature 0) worked out from the objective's draws in its
    order (t, the noise, then which draws take the sampling temperature), through joint_velocity, the
    uncached reference forward."""
    pixels, image_valid, ids, ids_valid, state, actions, *_ = batch
    g = torch.Generator().manual_seed(seed)
    a = actions.repeat_interleave(r, 0)
    t = flow_times(a.shape[0], g)
    noise = torch.randn(a.shape, generator=g)
    at = torch.rand(a.shape[0], generator=g) < share if share else torch.zeros(a.shape[0], dtype=torch.bool)
    noise[at] = 0.0  # pi0-tiny's temperature
    x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * a
    h, valid = model.embed_prefix(pixels, image_valid, ids, ids_valid)
    v = model.joint_velocity(h.repeat_interleave(r, 0), valid.repeat_interleave(r, 0), state.repeat_interleave(r, 0),
                             x_t, t)
    return float(((v - (noise - a))[..., :7] ** 2).mean()), at


def test_the_shared_prefix_cache_gives_the_joint_forwards_loss(pi0_tiny, frames, stats):
    """The objective draws (t, noise) `repeats` times per prefix through the cache; the same draws
    through joint_velocity give the same flow loss."""
    model, r = pi0_tiny.model, 3
    recipe = Pi0Recipe(pi0_tiny.cfg, pi0_tiny.tokenizer, Objective(repeats=r))
    batch = recipe.batch(frames, stats)
    with torch.no_grad():
        _, flow, *_ = training_loss(model, recipe.heads(), *batch, 7, Objective(repeats=r),
                                    torch.Generator().manual_seed(5))
        expected, _ = hand_flow_loss(model, batch, r, 5)
    assert float(flow) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_draws_at_the_sampling_temperature_train_the_flow_the_sampler_follows(pi0_tiny, frames, stats, share):
    """pi0-tiny samples at temperature 0: a draw taken at it starts from the origin, so x_t = (1 - t) a
    and the velocity to learn is -a; the other draws keep pi0's noise."""
    model, r = pi0_tiny.model, 2
    assert pi0_tiny.cfg.flow.noise_scale == 0.0
    objective = Objective(repeats=r, temperature_draws=share)
    recipe = Pi0Recipe(pi0_tiny.cfg, pi0_tiny.tokenizer, objective)
    batch = recipe.batch(frames, stats)
    with torch.no_grad():
        _, flow, *_ = training_loss(model, recipe.heads(), *batch, 7, objective, torch.Generator().manual_seed(3))
        expected, at = hand_flow_loss(model, batch, r, 3, share)
    assert at.all() if share == 1.0 else 0 < at.sum() < len(at)
    assert float(flow) == pytest.approx(expected, rel=1e-4)


def test_temperature_draws_are_refused_for_cogact_in_one_line():
    from vlacompile.cli.train import planned

    with pytest.raises(UserError, match="^--temperature-draws: cogact-tiny's recipe has no sampling temperature "
                                        r"\(it is pi0's\)$"):
        planned("cogact-tiny", None, None, None, None, 0, "cpu", 1, None, 0, temperature_draws=0.5)


def test_a_few_training_steps_lower_the_flow_loss(frames, stats):
    from vlacompile.models.pi0.config import PRESETS
    from vlacompile.models.pi0.policy import TINY_TOKENIZER
    from vlacompile.models.pi0.tokenizer import PromptTokenizer

    recipe = Pi0Recipe(PRESETS["pi0-tiny"], PromptTokenizer(TINY_TOKENIZER), Objective(repeats=2))
    model = recipe.initial_model(seed=3)
    head = recipe.heads()
    batch = recipe.batch(frames, stats)

    def flow(seed):  # the same times and noise every time: only the weights change
        with torch.no_grad():
            return float(recipe.loss(model, head, batch, torch.Generator().manual_seed(seed))[1])

    before = np.mean([flow(s) for s in range(3)])
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=2e-3)
    g = torch.Generator().manual_seed(7)
    for _ in range(10):
        opt.zero_grad()
        recipe.loss(model, head, batch, g)[0].backward()
        opt.step()
    assert np.mean([flow(s) for s in range(3)]) < 0.7 * before


@pytest.fixture(scope="module")
def labelled():
    from vlacompile.sim.demos import episode_frames

    return episode_frames("stack", 7, np.random.default_rng(0), chunk=50, every=6, patches=True)[:4]


def tiny_recipe(**objective):
    from vlacompile.models.pi0.config import PRESETS
    from vlacompile.models.pi0.policy import TINY_TOKENIZER
    from vlacompile.models.pi0.tokenizer import PromptTokenizer

    return Pi0Recipe(PRESETS["pi0-tiny"], PromptTokenizer(TINY_TOKENIZER), Objective(repeats=2, **objective))


def test_the_per_patch_loss_adds_to_the_flow_objective_and_is_off_by_default(labelled, stats):
    """With `patches` w, the total is flow + grounding + w x sim.patch_head's loss on the first camera's
    image tokens (the model's own embed_images); without it, the batch carries no labels and the total
    is what it was (the shipped run replays)."""
    from vlacompile.sim.patch_head import patch_loss

    off, on = tiny_recipe(), tiny_recipe(patches=0.5)
    assert not off.patch_labels and "per-patch" not in off.description and "per-patch" in on.description
    torch.manual_seed(0)
    model, heads = on.initial_model(seed=3), on.heads()
    batch = on.batch(labelled, stats)
    with torch.no_grad():
        total, flow, ground, dense, _ = on.loss(model, heads, batch, torch.Generator().manual_seed(1))
        expected = patch_loss(heads["patches"], model.embed_images(batch[0]), batch[7])
        total0, flow0, ground0, dense0, _ = off.loss(model, heads, off.batch(labelled, stats),
                                                  torch.Generator().manual_seed(1))
    assert float(dense) == pytest.approx(float(expected), rel=1e-6) and float(dense) > 0
    assert float(total) == pytest.approx(float(flow + ground + 0.5 * dense), rel=1e-6)
    assert float(dense0) == 0 and float(total0) == pytest.approx(float(flow0 + ground0), rel=1e-6)
    assert float(flow0) == pytest.approx(float(flow), rel=1e-6)  # the same draws: the labels change nothing else


def test_the_pointer_loss_reads_the_state_tokens_attention_as_the_joint_forward_computes_it(labelled, stats):
    """Against the uncached joint forward (both stacks in one attention per layer, joint_mask): per
    pointer layer and named object, -log of the share of the state token's attention that head 0 gives
    the first named object's patches and head 1 the second's, averaged; and the total grows by the
    pointer weight times it, the other terms unchanged under the same draws."""
    from vlacompile.models.pi0.masks import joint_mask, positions
    from vlacompile.models.pi0.model import joint_layer

    off, on = tiny_recipe(), tiny_recipe(pointer=0.5, pointer_layers=(1, 4))
    assert off.patch_labels is False and on.patch_labels and "pointer" in on.description
    torch.manual_seed(0)
    model, heads = on.initial_model(seed=3).eval(), on.heads()
    assert "patches" not in heads  # the pointer loss needs the labels, not the per-patch head
    batch = on.batch(labelled, stats)
    pixels, image_valid, ids, ids_valid, state, actions, _, _, named = batch
    assert (named == 1).any(1).all() and (named == 2).any(1).all()  # stack names two objects, both in view
    with torch.no_grad():
        total, flow, ground, dense, point = on.loss(model, heads, batch, torch.Generator().manual_seed(1))
        total0, flow0, ground0, *_ = off.loss(model, heads, off.batch(labelled, stats), torch.Generator().manual_seed(1))
        h, valid = model.embed_prefix(pixels, image_valid, ids, ids_valid)
        hs = model.embed_suffix(state, torch.randn(actions.shape), torch.full((4,), 0.5))  # the state token ignores both
        p = h.shape[1]
        allowed = joint_mask(valid, hs.shape[1] - 1)
        cos, sin = model.vlm.rope(positions(torch.cat([valid, torch.ones(hs.shape[:2], dtype=torch.bool)], 1)))
        shares = []
        for i, (vlm_layer, expert_layer) in enumerate(zip(model.vlm.layers, model.expert.layers)):
            if i in (1, 4):
                qs, _, _ = expert_layer.qkv(hs, cos[:, p:], sin[:, p:])
                _, kp, _ = vlm_layer.qkv(h, cos[:, :p], sin[:, :p])
                _, ks, _ = expert_layer.qkv(hs, cos[:, p:], sin[:, p:])
                keys = torch.cat([kp, ks], 2)[:, 0]  # one KV head
                scores = torch.einsum("bhd,btd->bht", qs[:, :, 0], keys) / qs.shape[-1] ** 0.5
                probs = scores.masked_fill(~allowed[:, p, None], float("-inf")).softmax(-1)  # the state token's row
                shares += [(probs[:, head, :256] * (named == role)).sum(-1) for role, head in ((1, 0), (2, 1))]
            h, hs = joint_layer(vlm_layer, expert_layer, h, hs, cos, sin, allowed)
    expected = torch.stack([-s.log().mean() for s in shares]).mean()
    assert float(point) == pytest.approx(float(expected), rel=1e-4) and float(dense) == 0
    assert float(total) == pytest.approx(float(flow + ground + 0.5 * point), rel=1e-6)
    assert float(flow0) == pytest.approx(float(flow), rel=1e-6) and float(ground0) == pytest.approx(float(ground))
    assert float(total0) == pytest.approx(float(flow0 + ground0), rel=1e-6)


def test_the_pointer_loss_trains_its_heads_onto_the_named_objects(labelled, stats):
    recipe = tiny_recipe(pointer=1.0)
    torch.manual_seed(0)
    model, heads = recipe.initial_model(seed=3), recipe.heads()
    batch = recipe.batch(labelled, stats)
    opt = torch.optim.AdamW([*model.parameters(), *heads.parameters()], lr=3e-3)
    g = torch.Generator().manual_seed(2)
    pointer = []
    for _ in range(15):
        opt.zero_grad()
        total, *_, point = recipe.loss(model, heads, batch, g)
        total.backward()
        opt.step()
        pointer.append(point.item())
    assert pointer[-1] < 0.7 * pointer[0]


def test_pi0s_vision_stage_lowers_the_patch_loss_and_trains_vision_only(labelled):
    recipe = tiny_recipe(patches=1.0)
    torch.manual_seed(0)
    model, heads = recipe.initial_model(seed=3), recipe.heads()
    opt = torch.optim.AdamW([*recipe.vision_parameters(model), *heads["patches"].parameters()], lr=2e-3)
    batch = recipe.vision_batch(labelled)

    def step() -> float:
        opt.zero_grad()
        (loss := recipe.vision_loss(model, heads, batch)).backward()
        opt.step()
        return loss.item()

    losses = [step() for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in [*model.vlm.parameters(), *model.expert.parameters()])


def test_a_vision_stage_without_the_per_patch_loss_is_one_line():
    from vlacompile.training import TrainConfig, resolved

    with pytest.raises(UserError, match="--vision-steps 50: pi0-tiny's recipe has no per-patch loss.*--patches"):
        resolved(TrainConfig(vision_steps=50), tiny_recipe())
    assert resolved(TrainConfig(vision_steps=50), tiny_recipe(patches=1.0)).vision_steps == 50


def test_the_shipped_pi0_tiny_loads_strictly_and_matches_its_recorded_hash():
    from vlacompile.fsutil import sha256
    from vlacompile.models import resolve
    from vlacompile.models.pi0 import embedded
    from vlacompile.models.pi0.build import state_shapes

    record = embedded.training_record()
    assert sha256(embedded.WEIGHTS) == record["weights_sha256"] and record["preset"] == "pi0-tiny"
    assert {"config", "steps", "data", "wall_seconds", "final_loss", "code_revision"} <= set(record)
    assert record["data"]["split"] == "train" and record["data"]["chunk"] == 50
    policy = resolve("pi0-tiny")
    assert {k: v.shape for k, v in policy.model.state_dict().items()} == state_shapes("pi0-tiny")
    assert (policy.statistics.state_dim, policy.statistics.action_dim) == (5, 7)

