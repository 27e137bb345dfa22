"""The readout diagnostic: which patches are the named object's, how a head's attention is split, and
the hidden states it probes are the LLM's own."""

import numpy as np
import torch

from vlacompile.models import training_recipe
from vlacompile.sim.demos import POSITION_SCALE, episode_frames
from vlacompile.sim.readout import pointing_head, shares, trace


def target_patches(frame) -> np.ndarray:
    """The target's patches found without the roles: its centre is the gripper's place plus the
    grounding offset (demos.grounding), and every patch of an object carries that centre."""
    centre = frame.grounding[:3] + POSITION_SCALE * frame.state[:3]
    return (frame.patches[:, 0] > 0) & np.all(np.abs(frame.patches[:, 2:] - centre) < 1e-4, axis=1)


def test_the_target_patches_are_the_named_objects_own():
    rng = np.random.default_rng(0)
    pick = episode_frames("pick", 200_003, rng, every=50, noise=0.0, patches=True)[0]
    assert target_patches(pick).any() and (target_patches(pick) == (pick.named > 0)).all()  # pick names one object
    assert set(np.unique(pick.named)) == {0, 1}
    put = episode_frames("put", 200_001, rng, every=50, noise=0.0, patches=True)[0]
    target = target_patches(put)  # found from the grounding target's centre, independently of the roles
    assert target.any() and (target == (put.named == 1)).all() and (put.named == 2).any()


def test_a_heads_shares_split_its_attention_between_target_other_named_and_unnamed_objects():
    """A hand-worked scene: a red cube (target, patches 0-1), a blue bowl (other named, 2), a red ball
    (3), a green cube (4) and a blue ball (5); kinds and colours are label indices."""
    target, named = np.zeros(256, bool), np.zeros(256, bool)
    target[:2], named[:3] = True, True
    labels = np.zeros((256, 5))
    labels[:6, :2] = [[1, 1], [1, 1], [2, 2], [3, 1], [1, 3], [3, 2]]  # (kind, colour)
    p = np.zeros(256)
    p[[0, 1, 2, 3, 4, 5, 200]] = 0.3, 0.2, 0.1, 0.1, 0.05, 0.05, 0.2  # 0.2 on a background patch
    assert np.allclose(shares(p, target, named, labels), [0.5, 0.1, 0.1, 0.05, 0.05])


def test_the_pointing_head_is_the_one_most_on_the_target_on_average_not_in_one_frame():
    targets = np.zeros((2, 256), bool)
    targets[:, 0] = True
    probs = np.zeros((2, 3, 256))
    probs[0, 0, 0] = 1.0  # head 0: all on the target in frame 0, none in frame 1
    probs[:, 1, 0] = 0.6  # head 1: 0.6 in both
    probs[1, 2, 0] = 0.9  # head 2: best in frame 1 only
    assert pointing_head(probs, targets) == 1


def test_the_traced_states_are_the_llms_hidden_states_at_the_cognition_token(tiny):
    recipe = training_recipe("cogact-tiny")
    model = tiny.model
    frames = episode_frames("stack", 4, np.random.default_rng(0), every=7, patches=True)[:2]
    t = trace(model, recipe, frames, (3, 31))
    images, ids, valid = recipe.batch_inputs(frames)
    assert valid.all()  # one instruction: the last position is the cognition token
    from vlacompile.models.cogact.objective import pixels_from_uint8

    with torch.no_grad():
        pixels = pixels_from_uint8(images)
        h, _, positions = model.llm_inputs(model.visual_tokens(pixels), ids, valid)
        hidden = model.llm_backbone.llm.model(inputs_embeds=h, position_ids=positions, output_hidden_states=True)
        cognition = model.cognition(pixels, ids, valid)
    np.testing.assert_allclose(t["states"][:, 0], hidden.hidden_states[4][:, -1].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(t["states"][:, 1], cognition.numpy(), rtol=1e-4, atol=1e-5)
    assert t["probs"].shape == (2, 2, 4, 256) and (t["probs"].sum(-1) < 1 + 1e-5).all()
