"""Token selection against hand-worked expectations, and the baselines."""

import math

import pytest
import torch

from vlacompile.passes import token_select
from vlacompile.passes.token_select import TokenSelectConfig, efficientvla_indices, relevance


def _expected(r, feats, t, k_key, alpha):
    """The rule, written independently with plain Python loops."""
    n_rel = math.floor(alpha * (t - k_key))
    order = sorted(range(len(r)), key=lambda i: -r[i])
    chosen = order[: k_key + n_rel]
    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    distance = {i: 1 - max(cos(feats[i], feats[j]) for j in chosen) for i in range(len(r)) if i not in chosen}
    chosen += sorted(distance, key=lambda i: -distance[i])[: t - k_key - n_rel]
    return sorted(chosen)


def test_selection_rule_on_a_hand_made_example():
    r = [0.9, 0.1, 0.5, 1.0, 0.0, 0.45, 0.3, 0.2, 0.8, 0.35]
    feats = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0.9, 0.1, 0], [0, 0, 1], [0.2, 0.9, 0.1],
             [1, 0, 0.1], [0.6, 0.6, 0.5], [1, 0.2, 0], [0, 0.3, 1]]
    cfg = TokenSelectConfig(tokens=7, k_key=2, alpha=0.5)  # 2 key + floor(2.5)=2 relevance + 3 diversity
    got = efficientvla_indices(torch.tensor([r]), torch.tensor([feats], dtype=torch.float32), cfg)
    expected = _expected(r, feats, 7, 2, 0.5)
    assert got[0].tolist() == expected
    # By hand: relevance picks 3, 0, 8, 2; the farthest from them are 4, 9 and 1 (then 5).
    assert expected == [0, 1, 2, 3, 4, 8, 9]


def test_relevance_sums_instruction_queries_and_ignores_padding():
    n, s = 3, 1 + 3 + 3  # BOS, 3 visual, 2 instruction tokens + 1 padding
    probs = torch.zeros(1, 2, s, s)
    probs[0, 0, 4, 1:4] = torch.tensor([0.2, 0.1, 0.0])
    probs[0, 1, 4, 1:4] = torch.tensor([0.4, 0.1, 0.0])  # head mean of row 4: 0.3, 0.1, 0.0
    probs[0, :, 5, 1:4] = torch.tensor([0.0, 0.3, 0.1])
    probs[0, :, 6, 1:4] = torch.tensor([0.0, 0.0, 9.0])  # padding row: must not count
    valid = torch.tensor([[True] * 6 + [False]])
    r = relevance(probs, valid, 1, n)
    # sums 0.3, 0.4, 0.1 -> min-max normalized
    torch.testing.assert_close(r, torch.tensor([[2 / 3, 1.0, 0.0]]))


def test_kept_tokens_keep_their_order_and_original_positions(tiny, encoded):
    pixels, ids, _ = encoded
    new, _ = token_select.apply(tiny.model, TokenSelectConfig(tokens=56), None)
    seen = {}
    selector = new.llm_backbone.selector
    original = selector.forward

    def spy(*args):
        out = original(*args)
        seen["positions"] = out[2]
        return out

    selector.forward = spy
    new.cognition(pixels, ids)
    pos = seen["positions"][0]
    n_text = ids.shape[1] - 1
    assert pos.shape[0] == 1 + 56 + n_text and pos[0] == 0
    visual = pos[1:57]
    assert (visual[1:] > visual[:-1]).all() and visual.min() >= 1 and visual.max() <= 256
    assert pos[57:].tolist() == list(range(257, 257 + n_text))


@pytest.mark.parametrize("method", ["random", "fastv", "efficientvla"])
def test_baselines_are_reproducible_and_seeded(tiny, encoded, method):
    pixels, ids, noise = encoded
    a, _ = token_select.apply(tiny.model, TokenSelectConfig(tokens=32, method=method, seed=1), None)
    b, _ = token_select.apply(tiny.model, TokenSelectConfig(tokens=32, method=method, seed=1), None)
    torch.testing.assert_close(a(pixels, ids, noise), b(pixels, ids, noise), atol=0, rtol=0)
    if method == "random":
        c, _ = token_select.apply(tiny.model, TokenSelectConfig(tokens=32, method="random", seed=2), None)
        assert not torch.equal(a.llm_backbone.selector.fixed, c.llm_backbone.selector.fixed)


def test_fastv_keeps_the_top_by_last_token_attention(tiny, encoded):
    pixels, ids, _ = encoded
    model = tiny.model
    h, valid, positions = model.llm_inputs(model.visual_tokens(pixels), ids)
    from vlacompile.models.cogact.llm import additive_causal_mask

    llm = model.llm_backbone
    mask, rope = additive_causal_mask(valid, h.dtype), llm.rotary(h, positions)
    h_in = llm.run_layer(0, h, mask, positions, rope)  # input of layer 1 (= K - 1)
    probs = llm.attention_probs(1, h_in, mask, rope).mean(dim=1)[0, -1, 1:257]
    expected = sorted(torch.topk(probs, 16).indices.tolist())
    new, _ = token_select.apply(model, TokenSelectConfig(tokens=16, method="fastv"), None)
    got = new.llm_backbone.selector.indices(llm, h_in, llm.run_layer(1, h_in, mask, positions, rope), valid, mask, rope)
    assert got[0].tolist() == expected


def test_proportional_bias_counts_what_each_kept_token_stands_for():
    feats = torch.tensor([[[1, 0], [0.9, 0.1], [0, 1], [0.8, 0.3], [0.95, 0.05], [0.1, 1]]])
    kept = torch.tensor([[0, 2]])
    # By hand: 1, 3 and 4 point mostly along token 0, 5 along token 2 -> 4 and 2 tokens.
    torch.testing.assert_close(token_select.proportional_bias(feats, kept), torch.tensor([[4.0, 2.0]]).log())
    present = torch.tensor([[True, True, True, True, False, True]])  # padding stands for nothing
    torch.testing.assert_close(token_select.proportional_bias(feats, kept, present), torch.tensor([[3.0, 2.0]]).log())


def test_proportional_attention_is_exact_for_duplicated_tokens():
    """The rule's premise: m copies of a key and value weigh as one copy with + log m on its logit."""
    torch.manual_seed(0)
    q, k, v = torch.randn(4), torch.randn(5, 4), torch.randn(5, 3)
    full_k, full_v = torch.cat([k, k[1:2].expand(3, -1)]), torch.cat([v, v[1:2].expand(3, -1)])  # 3 more of token 1
    full = (full_k @ q).softmax(0) @ full_v
    owner = torch.tensor([0, 1, 2, 3, 4, 1, 1, 1])
    feats = torch.nn.functional.one_hot(owner, 5).float()[None]  # each copy is most like its original
    bias = token_select.proportional_bias(feats, torch.arange(5)[None])[0]
    torch.testing.assert_close(((k @ q) + bias).softmax(0) @ v, full)


def _layer_masks(model, pixels, ids):
    llm, masks = model.llm_backbone, []
    original = llm.run_layer

    def spy(i, h, mask, positions, rope):
        masks.append(mask)
        return original(i, h, mask, positions, rope)

    llm.run_layer = spy
    model.cognition(pixels, ids)
    return masks


def test_later_layers_add_log_counts_to_the_kept_tokens_logits(tiny, encoded):
    pixels, ids, _ = encoded
    new, record = token_select.apply(tiny.model, TokenSelectConfig(tokens=16), None)
    assert record.config["weighting"] == "proportional"  # "auto" on CogACT
    seen = {}
    selector = new.llm_backbone.selector
    original = selector.forward

    def spy(backbone, h_in, h_out, valid, positions, mask, rope):
        seen["kept"] = selector.indices(backbone, h_in, h_out, valid, mask, rope)[0].tolist()
        seen["visual"] = h_out[0, 1:257]
        return original(backbone, h_in, h_out, valid, positions, mask, rope)

    selector.forward = spy
    masks = _layer_masks(new, pixels, ids)
    f = torch.nn.functional.normalize(seen["visual"], dim=-1)
    owners = (f @ f[seen["kept"]].T).argmax(dim=1).tolist()
    counts = torch.tensor([owners.count(j) for j in range(16)], dtype=torch.float32)
    assert counts.sum() == 256
    assert all(m.shape[-1] == 257 + ids.shape[1] - 1 for m in masks[:2])  # layers 0-1 see all tokens
    last_query = masks[5][0, 0, -1]  # a later layer, the cognition token's row
    torch.testing.assert_close(last_query[1:17], counts.log())
    assert torch.all(last_query[0] == 0) and torch.all(last_query[17:] == 0)


def test_unweighted_selection_is_the_papers_plain_drop(tiny, encoded):
    pixels, ids, _ = encoded
    new, record = token_select.apply(tiny.model, TokenSelectConfig(tokens=16, weighting="none"), None)
    assert record.config["weighting"] == "none"
    assert torch.all(_layer_masks(new, pixels, ids)[5][0, 0, -1] == 0)
