"""The modules against transformers' implementations (which LeRobot's pi0 wraps), and against rewrites."""

import copy

import pytest
import torch

from vlacompile.models.pi0.build import build_meta, state_shapes
from vlacompile.models.pi0.config import PRESETS
from vlacompile.models.pi0.gemma import RMSNorm

from .hf_configs import TINY, gemma_config, siglip_config


def test_key_names_and_shapes_are_transformers_paligemma_and_gemma():
    """LeRobot's PaliGemmaWithExpertModel holds transformers' PaliGemmaForConditionalGeneration and a Gemma
    CausalLM without embeddings (modeling_pi0.py); our names under those two must be theirs."""
    from transformers import GemmaForCausalLM, PaliGemmaConfig, PaliGemmaForConditionalGeneration

    vlm = PaliGemmaConfig(vision_config=siglip_config(TINY.siglip).to_dict(),
                          text_config=gemma_config(TINY.vlm).to_dict(), projection_dim=TINY.vlm.width)
    with torch.device("meta"):
        paligemma, expert = PaliGemmaForConditionalGeneration(vlm), GemmaForCausalLM(gemma_config(TINY.expert))
    # transformers 5.23's SiglipVisionModel has no `vision_model.` level; LeRobot 0.6 (transformers 5.4-5.5)
    # and openpi (4.53) save it: `vision_tower.vision_model.embeddings...` (openpi gemma_pytorch.py).
    theirs = {f"paligemma_with_expert.paligemma.{k}".replace(".vision_tower.", ".vision_tower.vision_model."): v.shape
              for k, v in paligemma.state_dict().items()}
    theirs |= {f"paligemma_with_expert.gemma_expert.{k}": v.shape for k, v in expert.state_dict().items()
               if "embed_tokens" not in k}
    ours = {k: v for k, v in state_shapes("pi0-tiny").items() if k.startswith("paligemma_with_expert.")}
    lm_heads = {k for k in theirs if k.endswith("lm_head.weight")}  # stored by LeRobot, never run by pi0
    assert set(theirs) - lm_heads == set(ours)
    assert all(theirs[k] == ours[k] for k in ours)


def test_siglip_equals_transformers_siglip(pi0_tiny):
    from transformers import SiglipVisionModel

    ours = pi0_tiny.model.vision_tower
    theirs = SiglipVisionModel(siglip_config(TINY.siglip)).eval()
    theirs.load_state_dict({k.removeprefix("vision_model."): v for k, v in ours.state_dict().items()}, strict=True)
    pixels = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(pixels), theirs(pixels).last_hidden_state, atol=1e-4, rtol=1e-4)


def test_prefix_cache_equals_transformers_gemma_cache(pi0_tiny, pi0_inputs):
    """Our per-layer K/V (after RoPE) against transformers' Gemma with a bidirectional prefix mask,
    on the valid tokens (the two treat padding queries differently, and nothing reads those)."""
    from transformers import GemmaModel

    model, x = pi0_tiny.model, pi0_inputs
    config = gemma_config(TINY.vlm)
    config.is_causal = False  # transformers then builds a bidirectional mask over the valid tokens
    theirs = GemmaModel(config).eval()
    theirs.load_state_dict(model.vlm.state_dict(), strict=True)
    with torch.no_grad():
        h, valid = model.embed_prefix(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"])
        cache = model.prefix_kv(h, valid)
        pos = valid.long().cumsum(-1) - 1
        out = theirs(inputs_embeds=h, attention_mask=valid.long(), position_ids=pos, use_cache=True)
    keep = valid[0]
    for layer, (k, v) in enumerate(zip(cache.keys, cache.values)):
        their_k, their_v = out.past_key_values.layers[layer].keys, out.past_key_values.layers[layer].values
        torch.testing.assert_close(k[..., keep, :], their_k[..., keep, :], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(v[..., keep, :], their_v[..., keep, :], atol=1e-4, rtol=1e-4)


def test_rmsnorm_scales_by_one_plus_weight():
    norm = RMSNorm(2, eps=0.0)
    norm.weight.data = torch.tensor([0.0, 1.0])
    rms = (12.5) ** 0.5  # of [3, 4]
    assert norm(torch.tensor([[3.0, 4.0]]))[0].tolist() == pytest.approx([3 / rms, 2 * 4 / rms])


def test_language_embeddings_are_scaled_and_image_tokens_are_not(pi0_tiny, pi0_inputs):
    model, x = pi0_tiny.model, pi0_inputs
    with torch.no_grad():
        h, _ = model.embed_prefix(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"])
        images = model.projector(model.vision_tower(x["pixels"][:, 0]))
    table = model.vlm.embed_tokens.weight
    torch.testing.assert_close(h[0, TINY.image_tokens:], table[x["ids"][0]] * TINY.vlm.width ** 0.5)
    torch.testing.assert_close(h[0, :256], images[0])


def _prune_channels(mlp, keep):
    mlp.gate_proj.weight.data = mlp.gate_proj.weight.data[keep]
    mlp.up_proj.weight.data = mlp.up_proj.weight.data[keep]
    mlp.down_proj.weight.data = mlp.down_proj.weight.data[:, keep]


def test_fewer_layers_and_smaller_mlps_still_run_and_agree(pi0_tiny, pi0_inputs):
    """Remove a paired layer and half of some MLP channels: the cached and joint paths still agree, and
    removing channels equals zeroing their down_proj columns (widths are read from the weights)."""
    model = copy.deepcopy(pi0_tiny.model)
    x, noise = pi0_inputs, pi0_tiny.noise(4)
    del model.vlm.layers[5], model.expert.layers[5]
    drop = torch.arange(0, TINY.vlm.mlp, 2)
    zeroed = copy.deepcopy(model)
    zeroed.vlm.layers[2].mlp.down_proj.weight.data[:, drop] = 0
    zeroed.expert.layers[2].mlp.down_proj.weight.data[:, drop[drop < TINY.expert.mlp]] = 0
    keep_vlm, keep_expert = torch.arange(1, TINY.vlm.mlp, 2), torch.arange(1, TINY.expert.mlp, 2)
    _prune_channels(model.vlm.layers[2].mlp, keep_vlm)
    _prune_channels(model.expert.layers[2].mlp, keep_expert)
    args = (x["pixels"], x["image_valid"], x["ids"], x["ids_valid"], x["state"], noise)
    with torch.no_grad():
        h, valid = model.embed_prefix(*args[:4])
        cache = model.prefix_kv(h, valid)
        t = torch.tensor([0.4])
        torch.testing.assert_close(model.velocity(cache, x["state"], noise, t),
                                   model.joint_velocity(h, valid, x["state"], noise, t), atol=1e-5, rtol=1e-5)
    assert len(cache.keys) == TINY.vlm.depth - 1
    torch.testing.assert_close(model(*args), zeroed(*args), atol=1e-5, rtol=1e-5)
    assert (model(*args) - pi0_tiny.model(*args)).abs().mean() > 1e-3  # the rewrite did change the model


def test_meta_build_allocates_nothing():
    model = build_meta(PRESETS["pi0-base"])
    assert all(p.device.type == "meta" for p in model.parameters())
