"""Training the embedded default: the objective learns, the schedule is as stated, and the shipped
weights are the ones their record describes. No test retrains the shipped model."""

import json
import shutil

import numpy as np
import pytest
import torch

from vlacompile.errors import UserError
from vlacompile.models.cogact import embedded
from vlacompile.models.cogact.build import from_state, state_shapes
from vlacompile.models.cogact.config import PRESETS
from vlacompile.models.cogact.objective import Objective, diffusion_loss, initial_state, pixels_from_uint8, sincos_table
from vlacompile.models.cogact.recipe import CogACTRecipe
from vlacompile.models.pi0 import embedded as pi0_embedded
from vlacompile.sim.patch_head import PatchHead, patch_loss
from vlacompile.training import Batches, TrainConfig, learning_rate


def test_a_few_training_steps_lower_the_loss_on_a_small_set(tiny):
    from vlacompile.sim.demos import episode_frames

    cfg = PRESETS["cogact-tiny"]
    model = from_state(cfg, initial_state(state_shapes(cfg.name), cfg, seed=3), "init").train()
    frames = iter(episode_frames("pick", 5, np.random.default_rng(0), patches=True)[:4])
    images, *rest = next(Batches(frames, CogACTRecipe(cfg, tiny.tokenizer), tiny.statistics, 4))[:4]
    batch = (pixels_from_uint8(images), *rest)
    objective = Objective(repeats=4, cond_drop=0.0)

    def loss(seed):  # the same diffusion steps and noise every time: only the weights change
        with torch.no_grad():
            return float(diffusion_loss(model, *batch, objective, torch.Generator().manual_seed(seed)))

    before = np.mean([loss(s) for s in range(3)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(7)
    for _ in range(12):
        opt.zero_grad()
        diffusion_loss(model, *batch, objective, g).backward()
        opt.step()
    after = np.mean([loss(s) for s in range(3)])
    assert before == pytest.approx(1.0, abs=0.15)  # the zero-initialized head predicts no noise: MSE ~ var(eps)
    assert after < 0.7 * before


def test_the_vision_stage_lowers_the_patch_loss_on_a_small_set(tiny):
    from vlacompile.sim.demos import episode_frames

    cfg = PRESETS["cogact-tiny"]
    recipe = CogACTRecipe(cfg, tiny.tokenizer)
    torch.manual_seed(0)
    model, heads = recipe.initial_model(3), recipe.heads()
    frames = episode_frames("stack", 7, np.random.default_rng(0), every=6, patches=True)[:4]
    params = [*recipe.vision_parameters(model), *heads["patches"].parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3)
    losses = []
    for _ in range(15):
        loss = recipe.vision_loss(model, heads, recipe.vision_batch(frames))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in model.llm_backbone.parameters())  # the stage trains vision only


def test_patch_loss_by_hand():
    """Zero logits: each cross-entropy is log(classes); the centre error counts only where a patch
    shows something (one patch, centre (3, 0, 0) against a prediction of 0: 9 / 3)."""
    head = PatchHead(8)
    torch.nn.init.zeros_(head[2].weight), torch.nn.init.zeros_(head[2].bias)
    labels = torch.tensor([[[0, 0, 0, 0, 0], [1, 1, 3, 0, 0]]], dtype=torch.float32)
    expected = np.log(head.kinds) + np.log(head.colours) + 3.0
    assert patch_loss(head, torch.randn(1, 2, 8), labels).item() == pytest.approx(expected, rel=1e-5)
    labels[0, 0, 2:] = 5.0  # what an empty patch's centre says is never read
    assert patch_loss(head, torch.randn(1, 2, 8), labels).item() == pytest.approx(expected, rel=1e-5)


def test_the_towers_start_from_sine_cosine_position_tables():
    """Width 8: per half, omega = (1, 1/100); token 35 is row 2, column 3 of the 16 x 16 grid."""
    table = sincos_table(256, 8)
    np.testing.assert_allclose(table[0, 35], [np.sin(2), np.sin(0.02), np.cos(2), np.cos(0.02),
                                               np.sin(3), np.sin(0.03), np.cos(3), np.cos(0.03)], rtol=1e-6)
    cfg = PRESETS["cogact-tiny"]
    state = initial_state(state_shapes(cfg.name), cfg, seed=0)
    tables = {k: v for k, v in state.items() if k.endswith("pos_embed")}
    assert len(tables) == 2
    for t in tables.values():
        torch.testing.assert_close(t, sincos_table(t.shape[1], t.shape[2]))


def test_learning_rate_warms_up_then_decays_to_its_floor():
    cfg = TrainConfig(steps=1000, warmup=100, lr=1e-3, min_lr_ratio=0.1)
    assert learning_rate(0, cfg) == pytest.approx(1e-5)
    assert learning_rate(99, cfg) == pytest.approx(1e-3)
    assert learning_rate(550, cfg) == pytest.approx(0.55e-3)  # half way through the cosine
    assert learning_rate(1000, cfg) == pytest.approx(1e-4)


def test_the_shipped_weights_load_strictly_and_match_their_recorded_hash(tiny):
    from vlacompile.fsutil import sha256

    record = embedded.training_record()
    assert sha256(embedded.WEIGHTS) == record["weights_sha256"]
    assert {"config", "steps", "data", "wall_seconds", "final_loss", "code_revision"} <= set(record)
    assert record["data"]["split"] == "train" and record["config"]["seed"] == 0
    shapes = state_shapes("cogact-tiny")
    assert {k: v.shape for k, v in tiny.model.state_dict().items()} == shapes
    assert tiny.statistics == embedded.read_statistics(embedded.STATISTICS, 7)


@pytest.mark.parametrize("module", [embedded, pi0_embedded], ids=["cogact-tiny", "pi0-tiny"])
def test_a_damaged_shipped_model_is_refused_with_one_line(module, tmp_path, monkeypatch):
    copy = tmp_path / module.WEIGHTS.name
    shutil.copyfile(module.WEIGHTS, copy)
    data = bytearray(copy.read_bytes())
    data[-10] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(module, "WEIGHTS", copy)
    with pytest.raises(UserError, match="does not match the sha256"):
        module.embedded_policy()


def test_grounding_targets_point_from_the_gripper_to_the_named_objects():
    from vlacompile.sim.demos import grounding
    from vlacompile.sim.tasks import make_episode

    world, task = make_episode("put", 11)
    x, y, g = world.objects[task.target], world.objects[task.other], world.gripper
    x.u, x.v, x.z = 0.2, 0.5, 0.0
    y.u, y.v, y.z = -0.4, 0.7, 0.0
    g.u, g.v, g.z, g.closed = 0.0, 0.4, 0.3, True
    # base frame: x along v, y along u; objects by their centre height; all times 3
    expected = [0.3, 0.6, 3 * (0.5 * x.height - 0.3), 0.9, -1.2, 3 * (0.5 * y.height - 0.3), 0.9, 0.0, 0.0]
    np.testing.assert_allclose(grounding(world, task), expected, atol=1e-6)
    x.held = True
    assert grounding(world, task)[-1] == 1.0


def _short_run(tiny, tmp_path, **given):
    """A whole `train` on the CPU, as small as it goes: few steps, few statistics episodes, no vision stage."""
    from vlacompile.training import train

    recipe = CogACTRecipe(PRESETS["cogact-tiny"], tiny.tokenizer)
    cfg = TrainConfig(**{"steps": 2, "vision_steps": 0, "batch": 2, "buffer": 8, "stats_episodes": 10, **given})
    return train(recipe, cfg, tmp_path / "out", progress=False, log=lambda *_: None)


def test_a_run_out_of_minutes_stops_after_its_first_step_and_records_the_steps_it_ran(tiny, tmp_path):
    record = _short_run(tiny, tmp_path, steps=50, minutes=0.001)
    assert record["steps"] == record["config"]["steps"] == 1
    assert len(json.loads((tmp_path / "out" / "loss.json").read_text())["loss"]) == 1


def test_a_continued_run_starts_from_the_given_weights_and_keeps_their_record(tiny, tmp_path):
    """At a vanishing learning rate the continued model is the one it started from."""
    from safetensors.torch import load_file

    from vlacompile.fsutil import sha256

    record = _short_run(tiny, tmp_path, steps=1, lr=1e-12, init=str(embedded.EMBEDDED), first_episode=7000)
    before, after = load_file(str(embedded.WEIGHTS)), load_file(str(tmp_path / "out" / "weights.safetensors"))
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    assert record["init"]["weights_sha256"] == sha256(embedded.WEIGHTS)
    assert record["init"]["record"]["weights_sha256"] == sha256(embedded.WEIGHTS)
    assert record["data"]["seeds_seen"][0] >= 7000


def test_sizing_to_minutes_fits_the_steps_that_remain():
    import time

    from vlacompile.training import SAVE_MARGIN, _sized

    cfg = TrainConfig(steps=10_000, minutes=1.0)
    sized = _sized(cfg, 200, per_step=0.01, start=time.perf_counter())
    assert abs(sized.steps - (200 + (60 - SAVE_MARGIN) / 0.01)) <= 2
    assert _sized(cfg, 200, per_step=1e-6, start=time.perf_counter()).steps == 10_000  # never past --steps


def test_the_pointer_loss_reads_the_cognition_tokens_attention_as_transformers_computes_it(tiny):
    """Against transformers' own eager attention weights: per layer and named object, -log of the
    share of the last token's attention that head 0 gives the first named object's patches and head 1
    the second's, averaged."""
    from vlacompile.models.cogact.objective import LayerInputs, pointer_loss
    from vlacompile.sim.demos import episode_frames

    cfg = PRESETS["cogact-tiny"]
    recipe = CogACTRecipe(cfg, tiny.tokenizer)
    model = recipe.initial_model(5).eval()
    frames = episode_frames("stack", 4, np.random.default_rng(0), every=7, patches=True)[:2]
    images, ids, valid, *_, named = next(Batches(iter(frames), recipe, tiny.statistics, 2))
    assert (named == 1).any(1).all() and (named == 2).any(1).all()  # stack names two objects, both in view
    assert valid.all()  # one instruction: no padding, the last position is the cognition token
    with torch.no_grad():
        visual = model.visual_tokens(pixels_from_uint8(images))
        with LayerInputs(model.llm_backbone, (1, 7)) as inputs:
            model.cognition_from_visual(visual, ids, valid)
        loss = pointer_loss(model.llm_backbone, inputs, valid, named)
        h, _, positions = model.llm_inputs(visual, ids, valid)
        llm = model.llm_backbone.llm
        llm.set_attn_implementation("eager")
        attentions = llm.model(inputs_embeds=h, position_ids=positions, output_attentions=True).attentions
    shares = [(attentions[i][:, head, -1, 1:257] * (named == role)).sum(-1) for i in (1, 7) for role, head in
              ((1, 0), (2, 1))]
    expected = torch.stack([-s.log().mean() for s in shares]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_readout_heads_read_the_cognition_tokens_hidden_state_as_transformers_computes_it(tiny):
    """Against transformers' own hidden states (hidden_states[i] is layer i's input): the mean over the
    readout layers of each head's grounding MSE on the RMS-normalized state at the last position, and
    the total loss grows by exactly that, at the grounding weight."""
    from dataclasses import replace

    from vlacompile.models.cogact.objective import training_loss
    from vlacompile.sim.demos import episode_frames

    cfg = PRESETS["cogact-tiny"]
    recipe = CogACTRecipe(cfg, tiny.tokenizer, objective=Objective(repeats=2, readout_layers=(2, 9), grounding=0.5))
    model = recipe.initial_model(5).eval()
    heads = recipe.heads()
    assert set(heads) == {"grounding", "patches", "grounding2", "grounding9"}
    frames = episode_frames("put", 3, np.random.default_rng(0), every=9, patches=True)[:2]
    images, ids, valid, actions, grounding, patches, named = next(Batches(iter(frames), recipe, tiny.statistics, 2))
    assert valid.all()  # one instruction: no padding, the last position is the cognition token
    pixels = pixels_from_uint8(images)

    def losses(objective):
        with torch.no_grad():
            return training_loss(model, heads, pixels, ids, valid, actions, grounding, patches, named, objective,
                                 torch.Generator().manual_seed(0))

    with torch.no_grad():
        h, _, positions = model.llm_inputs(model.visual_tokens(pixels), ids, valid)
        states = model.llm_backbone.llm.model(inputs_embeds=h, position_ids=positions, output_hidden_states=True)
        expected = torch.stack([torch.nn.functional.mse_loss(
            heads[f"grounding{i}"](torch.nn.functional.rms_norm(states.hidden_states[i][:, -1], (cfg.llm.hidden,))),
            grounding) for i in (2, 9)]).mean()
    with_readout, without = losses(recipe.objective), losses(replace(recipe.objective, readout_layers=()))
    unchanged = [float(v) for v in without[1:]]  # eps, grounding, patches, pointer
    assert [float(v) for v in with_readout[1:]] == pytest.approx(unchanged)
    assert (with_readout[0] - without[0]).item() == pytest.approx(0.5 * expected.item(), rel=1e-4)


def test_layer_drop_computes_what_the_model_without_the_skipped_layers_computes(tiny):
    """LayerDrop's invariant: a step with layers S skipped computes the cognition feature of the same
    model with S deleted from its stack (transformers' layers, no hooks); the draw is one per layer
    from the step's generator, and p = 0 draws nothing, so runs without LayerDrop replay exactly."""
    import copy

    from vlacompile.models.cogact.objective import SkippedLayers
    from vlacompile.sim.demos import episode_frames

    recipe = CogACTRecipe(PRESETS["cogact-tiny"], tiny.tokenizer)
    model = recipe.initial_model(5).eval()
    frames = episode_frames("pick", 2, np.random.default_rng(0), every=9, patches=True)[:2]
    images, ids, valid, *_ = next(Batches(iter(frames), recipe, tiny.statistics, 2))
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    assert SkippedLayers(model.llm_backbone, 0.0, g).skipped == [] and torch.equal(g.get_state(), state)
    drop = SkippedLayers(model.llm_backbone, 0.3, g)
    expected_skipped = (torch.rand(32, generator=torch.Generator().manual_seed(3)) < 0.3).nonzero().flatten().tolist()
    assert drop.skipped == expected_skipped and 0 < len(drop.skipped) < 32
    shallow = copy.deepcopy(model)
    layers = shallow.llm_backbone.llm.model.layers
    shallow.llm_backbone.llm.model.layers = torch.nn.ModuleList(
        [layer for i, layer in enumerate(layers) if i not in drop.skipped])
    with torch.no_grad():
        visual = model.visual_tokens(pixels_from_uint8(images))
        with drop:
            skipping = model.cognition_from_visual(visual, ids, valid)
        full = model.cognition_from_visual(visual, ids, valid)  # the hooks are gone after the block
        expected = shallow.cognition_from_visual(visual, ids, valid)
    torch.testing.assert_close(skipping, expected)
    assert not torch.allclose(full, expected)
