"""pi0 through the same passes as CogACT, by its PassTarget alone (models/pi0/targets.py)."""

import pytest
import torch

from vlacompile.passes import CacheConfig, LayerDropConfig, MlpPruneConfig, TokenSelectConfig
from vlacompile.passes import cache, layer_drop, mlp_prune, token_select


def _args(policy, x):
    return x["pixels"], x["image_valid"], x["ids"], x["ids_valid"], x["state"], policy.noise(3)


@pytest.mark.parametrize("module,cfg", [
    (layer_drop, LayerDropConfig(keep=18)),
    (mlp_prune, MlpPruneConfig(sparsity=0.0)),
    (token_select, TokenSelectConfig(tokens=512)),  # two cameras of 256
    (cache, CacheConfig(interval=1)),
])
def test_off_setting_gives_the_reference_actions(pi0_tiny, pi0_inputs, module, cfg):
    args = _args(pi0_tiny, pi0_inputs)
    new, _ = module.apply(pi0_tiny.model, cfg, None)
    torch.testing.assert_close(new(*args), pi0_tiny.model(*args), atol=1e-5, rtol=1e-5)


def _numel(module):
    return sum(p.numel() for p in module.parameters())


def test_layer_drop_removes_each_dropped_vlm_layer_with_the_expert_layer_that_reads_it(pi0_tiny, pi0_inputs):
    model = pi0_tiny.model
    new, record = layer_drop.apply(model, LayerDropConfig(keep=12, method="random", seed=4), None)
    kept, dropped = record.changes["kept_layers"], record.changes["dropped_layers"]
    assert len(new.vlm.layers) == len(new.expert.layers) == 12 == new.cfg.vlm.depth == new.cfg.expert.depth
    removed = sum(_numel(model.vlm.layers[i]) + _numel(model.expert.layers[i]) for i in dropped)
    assert record.params_before - record.params_after == removed
    # The pairs are the original ones: kept expert layer k is the one that read kept VLM layer k.
    for position, source in enumerate(kept):
        got, want = new.expert.layers[position], model.expert.layers[source]
        assert torch.equal(got.mlp.up_proj.weight, want.mlp.up_proj.weight)
    with torch.no_grad():
        cache_ = new.prefix_kv(*new.embed_prefix(*_args(pi0_tiny, pi0_inputs)[:4]))
    assert len(cache_.keys) == 12 and new(*_args(pi0_tiny, pi0_inputs)).isfinite().all()


def test_mlp_pruning_shrinks_both_stacks_geglus(pi0_tiny):
    new, record = mlp_prune.apply(pi0_tiny.model, MlpPruneConfig(0.25), None)
    for stack, dims in ((new.vlm, pi0_tiny.cfg.vlm), (new.expert, pi0_tiny.cfg.expert)):
        kept = dims.mlp - dims.mlp // 4
        for layer in stack.layers:
            assert layer.mlp.gate_proj.weight.shape == (kept, dims.width)
            assert layer.mlp.down_proj.weight.shape == (dims.width, kept)
    assert record.changes["head_intermediate_widths"] == [96] and record.changes["intermediate_widths"] == [192]


def test_expert_mlp_pruning_keeps_the_calibrated_channels_of_each_original_layer(pi0_tiny):
    """With pairing drop, expert layer k after the drop is original layer kept[k]: it keeps the
    channels calibration scored highest for that original layer."""
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(0)
    calib = SimpleNamespace(layer_importance=torch.rand(18, generator=g).tolist(), mlp_scores=torch.rand(18, 256, generator=g),
                            head_mlp_scores=torch.rand(18, 128, generator=g))
    dropped, record = layer_drop.apply(pi0_tiny.model, LayerDropConfig(keep=12), calib)
    new, _ = mlp_prune.apply(dropped, MlpPruneConfig(0.5), calib)
    for position, source in enumerate(record.changes["kept_layers"]):
        keep = torch.topk(calib.head_mlp_scores[source], 64).indices.sort().values
        want = pi0_tiny.model.expert.layers[source].mlp.up_proj.weight[keep]
        torch.testing.assert_close(new.expert.layers[position].mlp.up_proj.weight, want)


def test_expert_mlp_sparsity_prunes_the_expert_apart_from_the_vlm(pi0_tiny):
    """--expert-mlp-sparsity 0 leaves every expert MLP as it was while the VLM's lose a quarter;
    0.5 prunes the expert by half and the VLM by --mlp-sparsity alone."""
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(1)
    calib = SimpleNamespace(mlp_scores=torch.rand(18, 256, generator=g), head_mlp_scores=torch.rand(18, 128, generator=g))
    model = pi0_tiny.model
    new, record = mlp_prune.apply(model, MlpPruneConfig(0.25, head_sparsity=0.0), calib)
    assert record.config == {"sparsity": 0.25, "head_sparsity": 0.0}
    assert record.changes["intermediate_widths"] == [192] and record.changes["head_intermediate_widths"] == [128]
    for old, kept in zip(model.expert.layers, new.expert.layers):
        torch.testing.assert_close(kept.mlp.down_proj.weight, old.mlp.down_proj.weight, rtol=0, atol=0)
    _, record = mlp_prune.apply(model, MlpPruneConfig(0.25, head_sparsity=0.5), calib)
    assert record.changes["head_intermediate_widths"] == [64] and record.changes["intermediate_widths"] == [192]


def test_expert_mlp_sparsity_is_refused_for_cogact(tiny):
    from vlacompile.errors import UserError

    with pytest.raises(UserError, match="--expert-mlp-sparsity is for pi0"):
        mlp_prune.apply(tiny.model, MlpPruneConfig(0.25, head_sparsity=0.0), None)


def test_token_selection_shortens_the_cache_of_the_layers_after_it(pi0_tiny, pi0_inputs):
    x = pi0_inputs
    new, _ = token_select.apply(pi0_tiny.model, TokenSelectConfig(tokens=64, layer=4), None)
    with torch.no_grad():
        cache_ = new.prefix_kv(*new.embed_prefix(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"]))
    lengths = [k.shape[2] for k in cache_.keys]
    prompt = pi0_tiny.cfg.prompt_len
    assert lengths == [512 + prompt] * 4 + [64 + prompt] * 14


def test_flow_step_caching_recomputes_only_at_its_steps(pi0_tiny, pi0_inputs):
    """Interval 10 computes every branch once, at step 0: the expert's branch modules then run
    once per call instead of 10 times."""
    new, record = cache.apply(pi0_tiny.model, CacheConfig(interval=10), None)
    assert record.changes["computing_steps"] == [0]
    calls = []
    handle = new.expert.layers[0].mlp.register_forward_hook(lambda *a: calls.append(1))
    try:
        out = new(*_args(pi0_tiny, pi0_inputs))
    finally:
        handle.remove()
    assert len(calls) == 1 and out.isfinite().all()


def test_calibration_observes_pi0_through_its_target(pi0_tiny, pi0_inputs):
    from torch.nn import functional as F

    from vlacompile.calibration.collect import Collector
    from vlacompile.models.pi0.masks import positions, prefix_mask

    model, args = pi0_tiny.model, _args(pi0_tiny, pi0_inputs)
    with Collector(model, select_layer=2) as col, torch.no_grad():
        model(*args)
        col.end_sample()
    res = col.results()
    with torch.no_grad():  # layer 0 by hand: 1 - mean cos(h, layer 0's output) over the prefix
        h, valid = model.embed_prefix(*args[:4])
        out = model.vlm.layers[0](h, *model.vlm.rope(positions(valid)), prefix_mask(valid))
    importance = res["layer_importance"]
    assert importance[0] == pytest.approx(float(1 - F.cosine_similarity(h.double(), out.double(), dim=-1).mean()))
    assert importance[-1] == 1.0 and all(0 < x < 1 for x in importance[:-1])  # the last output feeds nothing
    assert res["token_relevance"].shape == (1, 512) and res["mlp_scores"].shape == (18, pi0_tiny.cfg.vlm.mlp)
    assert torch.tensor(res["dit_similarity"]["attn"]).shape == (18, 9)  # expert layers x step pairs


def test_kv_pairing_keeps_the_whole_expert_and_the_dropped_layers_kv_projections(pi0_tiny, pi0_inputs):
    """--expert-pairing kv, dropping the last three VLM layers: the cache keeps 18 entries; entries up to
    15 are the reference's (nothing before them changed; entry 15 reads layer 14's output as before),
    and 16, 17 are those layers' K/V projections of the residual stream after the last kept layer."""
    model = pi0_tiny.model
    new, record = layer_drop.apply(model, LayerDropConfig(keep=15, method="last", pairing="kv"), None)
    assert record.changes["dropped_layers"] == [15, 16, 17] and record.config["pairing"] == "kv"
    assert len(new.vlm.layers) == 15 and len(new.expert.layers) == 18
    gone = sum(_numel(model.vlm.layers[i]) - _numel(model.vlm.layers[i].input_layernorm)
               - _numel(model.vlm.layers[i].self_attn.k_proj) - _numel(model.vlm.layers[i].self_attn.v_proj)
               for i in (15, 16, 17))
    assert record.params_before - record.params_after == gone
    x = pi0_inputs
    with torch.no_grad():
        h, valid = model.embed_prefix(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"])
        ref, got = model.prefix_kv(h, valid), new.prefix_kv(h, valid)
        for i in range(16):
            torch.testing.assert_close(got.keys[i], ref.keys[i])
            torch.testing.assert_close(got.values[i], ref.values[i])
        from vlacompile.models.pi0.masks import positions, prefix_mask

        cos, sin = model.vlm.rope(positions(valid))
        stream = h
        for layer in model.vlm.layers[:15]:
            stream = layer(stream, cos, sin, prefix_mask(valid))
        for i in (16, 17):
            _, k, v = model.vlm.layers[i].qkv(stream, cos, sin)
            torch.testing.assert_close(got.keys[i], k)
            torch.testing.assert_close(got.values[i], v)
        assert new(*_args(pi0_tiny, x)).shape == (1, 50, 32)


def test_under_kv_pairing_the_last_vlm_layer_is_dropped_first_and_that_changes_nothing(pi0_tiny, pi0_inputs):
    """Calibration gives the last VLM layer importance 1 (its output feeds nothing, so it never sees
    it). Under kv pairing its K/V source stays, so dropping it is free: --layers 17 drops it and the
    actions are the reference's; under drop pairing its expert reader would go, so it stays and the
    least important other layer goes."""
    from types import SimpleNamespace

    importance = [0.5 - 0.01 * i for i in range(17)] + [1.0]  # layer 16 the least important of the rest
    calib = SimpleNamespace(layer_importance=importance)
    args = _args(pi0_tiny, pi0_inputs)
    new, record = layer_drop.apply(pi0_tiny.model, LayerDropConfig(keep=17, pairing="kv"), calib)
    assert record.changes["dropped_layers"] == [17] and record.changes["free_layers"] == [17]
    with torch.no_grad():
        torch.testing.assert_close(new(*args), pi0_tiny.model(*args), atol=1e-5, rtol=1e-5)
    _, record = layer_drop.apply(pi0_tiny.model, LayerDropConfig(keep=12, pairing="kv"), calib)
    assert record.changes["dropped_layers"] == [12, 13, 14, 15, 16, 17]
    _, record = layer_drop.apply(pi0_tiny.model, LayerDropConfig(keep=17), calib)
    assert record.changes["dropped_layers"] == [16] and "free_layers" not in record.changes


def test_kv_pairing_is_refused_for_cogact(tiny):
    from vlacompile.errors import UserError

    with pytest.raises(UserError, match="--expert-pairing kv is for pi0"):
        layer_drop.apply(tiny.model, LayerDropConfig(keep=22, pairing="kv"), None)


def test_pi0_selects_tokens_unweighted_and_refuses_proportional_attention(pi0_tiny):
    """pi0's stack takes boolean masks and its expert reads the prefix K/V in another graph, so its
    target declares no key bias: "auto" is the plain drop, an explicit ask is a one-line error."""
    from vlacompile.errors import UserError

    _, record = token_select.apply(pi0_tiny.model, TokenSelectConfig(tokens=128), None)
    assert record.config["weighting"] == "none"
    with pytest.raises(UserError, match="--token-weighting proportional: .*use --token-weighting none"):
        token_select.apply(pi0_tiny.model, TokenSelectConfig(tokens=128, weighting="proportional"), None)


@pytest.mark.parametrize("method", ["efficientvla", "fastv"])
def test_token_selection_never_keeps_an_absent_cameras_tokens(pi0_tiny, pi0_inputs, method):
    """One camera of two is present (256 real visual tokens); keeping 128, every kept one is real."""
    new, _ = token_select.apply(pi0_tiny.model, TokenSelectConfig(tokens=128, method=method), None)
    x = pi0_inputs
    with torch.no_grad():
        h, valid = new.embed_prefix(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"])
        cache = new.prefix_kv(h, valid)
    kept_visual = cache.valid[-1][0, :128]
    assert cache.valid[-1].shape[1] == 128 + 48 and bool(kept_visual.all())
