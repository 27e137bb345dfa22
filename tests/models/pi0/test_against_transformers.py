"""End to end against an independent implementation: transformers' PI0ForConditionalGeneration (written
for LeRobot's pi0_base) given the same weights, inputs and noise must sample the same actions."""

import copy
from dataclasses import replace

import torch

from .hf_configs import TINY, gemma_config, siglip_config

SUFFIX = ("state_proj", "action_in_proj", "action_time_mlp_in", "action_time_mlp_out")


def _their_name(key: str) -> str:
    """LeRobot's names -> transformers' PI0 names (transformers conversion_mapping.py, "pi0")."""
    key = (key.replace("paligemma_with_expert.paligemma.model.", "model.vlm.")
              .replace("paligemma_with_expert.gemma_expert.model.", "model.dit.")
              .replace("vision_tower.vision_model.", "vision_tower."))  # no vision_model level in 5.23
    return f"embed_action_time.{key}" if key.startswith(SUFFIX) else key


def _transformers_pi0(model):
    from transformers import PI0Config, PI0ForConditionalGeneration

    vlm = {"text_config": {**gemma_config(TINY.vlm).to_dict(), "model_type": "gemma"},
           "vision_config": {**siglip_config(TINY.siglip).to_dict(), "model_type": "siglip_vision_model"},
           "projection_dim": TINY.vlm.width, "image_token_id": TINY.vlm.vocab}
    theirs = PI0ForConditionalGeneration(PI0Config(vlm_config=vlm, dit_config={**gemma_config(TINY.expert).to_dict(),
                                                                               "model_type": "gemma"})).eval()
    state = {_their_name(k): v for k, v in model.state_dict().items()}
    unused = set(theirs.state_dict()) - set(state)
    assert unused == {"model.dit.embed_tokens.weight"}  # transformers' expert has an embedding pi0 never reads
    theirs.load_state_dict(state | {k: theirs.state_dict()[k] for k in unused}, strict=True)
    return theirs


def test_actions_equal_transformers_pi0(pi0_tiny, pi0_inputs):
    x, noise = pi0_inputs, pi0_tiny.noise(3)
    model = copy.deepcopy(pi0_tiny.model)  # at pi0's own temperature: the flow starts at the noise itself
    model.cfg = replace(model.cfg, flow=replace(model.cfg.flow, noise_scale=1.0))
    theirs = _transformers_pi0(pi0_tiny.model)
    # transformers marks image places in the ids; a camera's tokens are masked with its slot.
    ids = torch.cat([torch.full((1, TINY.image_tokens), TINY.vlm.vocab), x["ids"]], dim=1)
    mask = torch.cat([x["image_valid"].repeat_interleave(TINY.siglip.tokens, dim=1), x["ids_valid"]], dim=1).long()
    with torch.no_grad():
        ours = model(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"], x["state"], noise)
        reference = theirs.sample_actions(state=x["state"], input_ids=ids, pixel_values=x["pixels"],
                                          noise=noise.clone(), attention_mask=mask,
                                          pixel_attention_mask=x["image_valid"])
    # transformers forms the time embedding's angles in float32, openpi and LeRobot (and we) in float64.
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    assert (ours - noise).abs().mean() > 0.1
