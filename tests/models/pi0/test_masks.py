"""The block-causal mask and positions, against a hand-worked example (docs/PI0.md §4)."""

import torch

from vlacompile.models.pi0.masks import joint_mask, positions, suffix_mask

# Tokens: img0 img1 | lang0 lang1(pad) | state | act0 act1
PREFIX_VALID = torch.tensor([[True, True, True, False]])
# Rows are queries, columns keys. The prefix is bidirectional among its valid tokens and reads no
# suffix; the pad reads nothing and is read by nobody; the state reads the prefix and itself; the
# actions read the prefix, the state and both actions.
EXPECTED = torch.tensor([
    # i0 i1 l0 l1 st a0 a1
    [1, 1, 1, 0, 0, 0, 0],  # img0
    [1, 1, 1, 0, 0, 0, 0],  # img1
    [1, 1, 1, 0, 0, 0, 0],  # lang0
    [0, 0, 0, 0, 0, 0, 0],  # lang1 (pad)
    [1, 1, 1, 0, 1, 0, 0],  # state
    [1, 1, 1, 0, 1, 1, 1],  # act0
    [1, 1, 1, 0, 1, 1, 1],  # act1
], dtype=torch.bool)


def test_joint_mask_is_the_hand_worked_one():
    assert torch.equal(joint_mask(PREFIX_VALID, horizon=2)[0], EXPECTED)


def test_cached_suffix_reads_what_the_joint_mask_gives_it():
    assert torch.equal(suffix_mask(PREFIX_VALID, horizon=2)[0], EXPECTED[4:])


def test_padding_takes_no_position():
    valid = torch.cat([PREFIX_VALID, torch.ones(1, 3, dtype=torch.bool)], dim=1)
    assert positions(valid)[0].tolist() == [0, 1, 2, 2, 3, 4, 5]
