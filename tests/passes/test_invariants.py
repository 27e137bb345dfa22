"""Each pass at its 'off' setting is the reference; each pass leaves its input untouched and
removes exactly what it says."""

import pytest
import torch

from vlacompile.passes import cache, layer_drop, mlp_prune, token_select
from vlacompile.passes import CacheConfig, LayerDropConfig, MlpPruneConfig, TokenSelectConfig


@pytest.mark.parametrize("module,cfg", [
    (layer_drop, LayerDropConfig(keep=32)),
    (mlp_prune, MlpPruneConfig(sparsity=0.0)),
    (token_select, TokenSelectConfig(tokens=256)),
    (cache, CacheConfig(interval=1)),
])
def test_off_setting_gives_the_reference_outputs(tiny, calibrated, encoded, module, cfg):
    pixels, ids, noise = encoded
    new, _ = module.apply(tiny.model, cfg, calibrated[0])
    torch.testing.assert_close(new.cognition(pixels, ids), tiny.model.cognition(pixels, ids), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new(pixels, ids, noise), tiny.model(pixels, ids, noise), atol=1e-5, rtol=1e-5)


def test_passes_leave_their_input_untouched(tiny, calibrated, encoded):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    reference = tiny.model(*encoded)
    for module, cfg in ((layer_drop, LayerDropConfig(10)), (mlp_prune, MlpPruneConfig(0.5)),
                        (token_select, TokenSelectConfig(16)), (cache, CacheConfig(5))):
        module.apply(tiny.model, cfg, calibrated[0])
    after = tiny.model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert tiny.model.llm_backbone.selector is None and not hasattr(tiny.model.action_model, "denoiser")
    torch.testing.assert_close(tiny.model(*encoded), reference, atol=0, rtol=0)


def _numel(module):
    return sum(p.numel() for p in module.parameters())


def test_layer_drop_is_a_plain_smaller_model_and_removes_exactly_those_layers(tiny, calibrated):
    calib = calibrated[0]
    new, record = layer_drop.apply(tiny.model, LayerDropConfig(22), calib)
    dropped = record.changes["dropped_layers"]
    assert sorted(dropped) == sorted(calib.ranking()[:10])  # the 10 least important
    layers = new.llm_backbone.layers
    assert len(layers) == 22 == new.llm_backbone.llm.config.num_hidden_layers == new.cfg.llm.layers
    assert [layer.self_attn.layer_idx for layer in layers] == list(range(22))
    removed = sum(_numel(tiny.model.llm_backbone.layers[i]) for i in dropped)
    assert record.params_before - record.params_after == removed == _numel(tiny.model) - _numel(new)


def test_mlp_prune_shrinks_weights_by_exactly_the_channels_removed(tiny, calibrated, encoded):
    new, record = mlp_prune.apply(tiny.model, MlpPruneConfig(0.25), calibrated[0])
    hidden, width = tiny.cfg.llm.hidden, tiny.cfg.llm.intermediate
    kept = width - int(0.25 * width)
    for layer in new.llm_backbone.layers:
        assert layer.mlp.gate_proj.weight.shape == (kept, hidden) == layer.mlp.up_proj.weight.shape
        assert layer.mlp.down_proj.weight.shape == (hidden, kept)
    assert _numel(tiny.model) - _numel(new) == 32 * (width - kept) * 3 * hidden
    # The kept channels are the calibrated top ones, and the pruned layer equals the full one on them.
    layer0, ref0 = new.llm_backbone.layers[0].mlp, tiny.model.llm_backbone.layers[0].mlp
    keep = torch.topk(calibrated[0].mlp_scores[0], kept).indices.sort().values
    torch.testing.assert_close(layer0.gate_proj.weight, ref0.gate_proj.weight[keep])
    x = torch.randn(3, hidden, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(width).index_fill(0, keep, 1.0)
    masked = ref0.down_proj(ref0.act_fn(ref0.gate_proj(x)) * ref0.up_proj(x) * mask)
    torch.testing.assert_close(layer0(x), masked, atol=1e-5, rtol=1e-5)


def test_cache_skips_work_on_non_computing_steps(tiny, encoded):
    from torch.utils.flop_counter import FlopCounterMode

    def dit_flops(model):
        cog = model.cognition(*encoded[:2])
        with FlopCounterMode(display=False) as counter:
            model.act(cog, encoded[2])
        return counter.get_total_flops()

    full = dit_flops(tiny.model)
    cached, record = cache.apply(tiny.model, CacheConfig(5), None)
    assert record.changes["computing_steps"] == [0, 5]
    assert dit_flops(cached) < 0.3 * full  # 2 of 10 steps run the blocks


@pytest.mark.parametrize("module,cfg,message", [
    (layer_drop, LayerDropConfig(0), "--layers 0 is outside"),
    (layer_drop, LayerDropConfig(33), "--layers 33 is outside"),
    (mlp_prune, MlpPruneConfig(1.0), "--mlp-sparsity 1.0 is outside"),
    (token_select, TokenSelectConfig(3), "--tokens 3 is outside"),
    (token_select, TokenSelectConfig(257), "--tokens 257 is outside"),
    (cache, CacheConfig(0), "--cache-interval 0 is outside"),
])
def test_out_of_range_configs_are_user_errors(tiny, module, cfg, message):
    from vlacompile.errors import UserError

    with pytest.raises(UserError, match=message):
        module.apply(tiny.model, cfg, None)
