"""The CogACT forward: determinism, the LLM loop against transformers, padding, conditioning."""

import torch

from vlacompile.models.cogact.build import state_shapes, synthetic
from vlacompile.models.cogact.config import PRESETS


def test_synthetic_weights_are_deterministic_from_the_seed(tiny):
    first, again = (synthetic(PRESETS["cogact-tiny"]).state_dict() for _ in range(2))
    assert again.keys() == first.keys() == tiny.model.state_dict().keys()  # the trained default's layout
    assert all(torch.equal(v, again[k]) for k, v in first.items())


def test_same_seed_same_actions_and_noise_is_an_input(tiny, sample_image):
    a = tiny.predict(sample_image, "pick up the red block", seed=3)
    b = tiny.predict(sample_image, "pick up the red block", seed=3)
    c = tiny.predict(sample_image, "pick up the red block", noise=tiny.noise(3))
    assert a.shape == (16, 7)
    assert (a == b).all() and (a == c).all()
    n3 = tiny.predict_normalized(sample_image, "pick up the red block", tiny.noise(3))
    n4 = tiny.predict_normalized(sample_image, "pick up the red block", tiny.noise(4))
    assert (n3 - n4).abs().max() > 1e-3


def test_actions_depend_on_image_and_instruction(tiny, sample_image):
    noise = tiny.noise(0)
    base = tiny.predict_normalized(sample_image, "pick up the red block", noise)
    other_text = tiny.predict_normalized(sample_image, "push the coke can to the left", noise)
    other_image = tiny.predict_normalized(sample_image.rotate(90), "pick up the red block", noise)
    # A vacuous head (zero final layer) would give identical outputs here.
    assert (base - other_text).abs().max() > 1e-3
    assert (base - other_image).abs().max() > 1e-3
    assert base.abs().max() < 1.5, "the embedded model's chunk should not saturate the [-1, 1] clip"


def test_every_llm_layer_changes_the_cognition_feature(tiny, sample_image):
    pixels, ids = tiny.encode(sample_image, "pick up the red block")
    ref = tiny.model.cognition(pixels, ids)
    llm = tiny.model.llm_backbone
    for i in range(0, len(llm.layers), 7):
        layer = llm.layers[i]
        saved = layer.mlp.down_proj.weight.data.clone()
        layer.mlp.down_proj.weight.data.zero_()
        try:
            assert not torch.allclose(tiny.model.cognition(pixels, ids), ref, atol=1e-6), f"layer {i} is inert"
        finally:
            layer.mlp.down_proj.weight.data.copy_(saved)


def test_llm_loop_matches_transformers_llama_forward(tiny, sample_image):
    pixels, ids = tiny.encode(sample_image, "place the sponge on the plate")
    model = tiny.model
    h, valid, positions = model.llm_inputs(model.visual_tokens(pixels), ids)
    ours, _ = model.llm_backbone(h, valid, positions)
    ref = model.llm_backbone.llm.model(inputs_embeds=h, attention_mask=valid.long()).last_hidden_state
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_right_padding_does_not_change_the_cognition_feature(tiny, sample_image):
    pixels, ids = tiny.encode(sample_image, "lift the yellow cube")
    pad = torch.zeros(1, 9, dtype=ids.dtype)
    padded = torch.cat([ids, pad], dim=1)
    valid = torch.cat([torch.ones_like(ids), torch.zeros_like(pad)], dim=1).bool()
    torch.testing.assert_close(
        tiny.model.cognition(pixels, padded, valid), tiny.model.cognition(pixels, ids), atol=1e-5, rtol=1e-5
    )


def test_vision_reads_the_second_to_last_block_without_final_norm(tiny, sample_image):
    pixels, _ = tiny.encode(sample_image, "x")
    vit = tiny.model.vision_backbone.dino_featurizer
    x = vit.patch_embed(pixels[:, :3]) + vit.pos_embed
    x = torch.cat([vit.cls_token, vit.reg_token, x], dim=1)
    for block in list(vit.blocks)[:-1]:
        x = block(x)
    torch.testing.assert_close(vit(pixels[:, :3]), x[:, 5:])
    assert vit(pixels[:, :3]).shape == (1, 256, PRESETS["cogact-tiny"].dino.width)


def test_released_modules_that_never_run_are_present():
    keys = state_shapes("cogact-base")
    for key in ("vision_backbone.siglip_featurizer.attn_pool.latent", "llm_backbone.llm.lm_head.weight",
                "action_model.net.history_embedder.linear.weight", "action_model.net.z_embedder.uncondition",
                "vision_backbone.dino_featurizer.reg_token", "projector.projector.4.weight"):
        assert key in keys, key
