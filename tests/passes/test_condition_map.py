"""The condition map: the ridge fit against hand-made affine maps, a known distortion of the cognition
feature undone through the model, nothing installed where nothing moved, and the family refusal."""

import pytest
import torch

from vlacompile import pipeline
from vlacompile.errors import UserError
from vlacompile.passes import CompressConfig, ConditionMapConfig, condition_map
from vlacompile.passes.record import fresh_copy

from ..conftest import CALIB

FIT = ConditionMapConfig("benchmark", episodes=30)  # 120 frames: 96 to fit 65 x 64 numbers, 24 held out


@pytest.fixture(scope="module")
def fit_set(tiny, tmp_path_factory):
    return pipeline.condition_fit(tiny, FIT, CALIB, tmp_path_factory.mktemp("cache"), progress=False)


def test_the_fit_recovers_an_affine_map_and_a_large_ridge_gives_the_identity():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(300, 8, generator=g, dtype=torch.float64)
    m = torch.eye(8, dtype=torch.float64) + 0.3 * torch.randn(8, 8, generator=g, dtype=torch.float64)
    b = torch.randn(8, generator=g, dtype=torch.float64)
    a = condition_map.fit_affine(c, c @ m + b, ridge=0.0)
    torch.testing.assert_close(a[:-1], m) and torch.testing.assert_close(a[-1], b)
    far = condition_map.fit_affine(c, c @ m + b, ridge=1e9)
    torch.testing.assert_close(far, condition_map.identity(8), atol=1e-6, rtol=0)


def test_the_installed_map_computes_c_a_in_float32_whatever_the_input_precision():
    a = torch.cat([2 * torch.eye(3), torch.tensor([[1.0, 0.0, -1.0]])]).double()  # c -> 2c + (1, 0, -1)
    module = condition_map.module_of(a)
    out = module(torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float16))
    assert out.dtype == torch.float16 and out.tolist() == [[3.0, 4.0, 5.0]]


def test_a_per_channel_scaling_of_the_cognition_feature_is_undone(tiny, fit_set, encoded):
    """Scaling the final norm's weight scales the cognition feature channel by channel: an affine
    distortion the map must invert, on held-out episodes too."""
    distorted = fresh_copy(tiny.model)
    scale = torch.linspace(0.5, 1.5, tiny.cfg.llm.hidden)
    with torch.no_grad():
        distorted.llm_backbone.llm.model.norm.weight.mul_(scale)
    new, record = condition_map.apply(distorted, FIT, fit_set)
    held = record.changes["heldout_cosine"]
    assert record.changes["installed"] and held["before"] < 0.97 and held["after"] > 0.9999
    pixels, ids, _ = encoded
    got, want = new.cognition(pixels, ids), tiny.model.cognition(pixels, ids)
    assert ((got - want).norm() / want.norm()).item() < 0.01  # the ridge leaves a little of the distortion
    assert distorted.condition_map is None  # the input model is untouched
    assert record.params_after - record.params_before == 64 * 65


def test_nothing_is_installed_where_nothing_moved_the_feature(tiny, fit_set, encoded):
    new, record = condition_map.apply(tiny.model, FIT, fit_set)
    assert not record.changes["installed"] and record.changes["heldout_error"]["before"] == pytest.approx(0.0, abs=1e-7)
    assert new.condition_map is None
    torch.testing.assert_close(new(*encoded), tiny.model(*encoded), atol=0, rtol=0)


def test_the_fp16_export_keeps_the_map_in_float32(tiny, fit_set):
    from vlacompile.models.cogact.export import for_export

    distorted = fresh_copy(tiny.model)
    with torch.no_grad():
        distorted.llm_backbone.llm.model.norm.weight.mul_(1.2)
    new, _ = condition_map.apply(distorted, FIT, fit_set)
    half = for_export(new, "fp16")
    assert half.condition_map.weight.dtype == torch.float32
    assert half.llm_backbone.llm.model.norm.weight.dtype == torch.float16


def test_pi0_which_reads_no_single_vector_is_refused_in_one_line():
    from vlacompile.cli.compile_options import config_for
    from vlacompile.models import resolve_config

    cfg = resolve_config(None, "pi0-tiny")
    assert config_for(cfg, mlp_sparsity=0.25, cache_interval=5, token_method="efficientvla",
                      select_layer=2).condition is None  # off by default for pi0
    with pytest.raises(UserError, match="reads no single conditioning vector") as err:
        config_for(cfg, condition_map=True, mlp_sparsity=0.25, cache_interval=5, token_method="efficientvla",
                   select_layer=2)
    assert "\n" not in str(err.value)


def test_the_map_is_on_for_cogact_only_after_a_pass_that_moves_the_feature_and_survives_the_manifest(tiny):
    from vlacompile.cli.compile_options import config_for

    flags = dict(mlp_sparsity=0.25, cache_interval=5, token_method="efficientvla", select_layer=2)
    config = config_for(tiny.cfg, **flags)
    assert config.condition == ConditionMapConfig("auto", 200)
    assert CompressConfig.from_json(config.to_json()) == config
    assert CompressConfig.from_json({k: v for k, v in config.to_json().items() if k != "condition"}).condition is None
    only_cache = config_for(tiny.cfg, layers=32, tokens=256, **{**flags, "mlp_sparsity": 0.0})
    assert only_cache.cache is not None and only_cache.condition is None
    with pytest.raises(UserError, match="--condition-map-episodes 2 is outside"):
        config_for(tiny.cfg, condition_map_episodes=2, **flags)


def test_auto_fits_on_the_benchmark_for_a_benchmark_model_and_on_the_calibration_data_otherwise(tiny):
    from dataclasses import replace

    assert pipeline.map_data(tiny, ConditionMapConfig(), CALIB) == "benchmark"
    other = replace(tiny, statistics={"bridge_orig": tiny.statistics["vlacompile_tabletop"]})
    assert pipeline.map_data(other, ConditionMapConfig(), CALIB) == str(CALIB)
    assert pipeline.map_data(other, ConditionMapConfig(str(CALIB / "x")), CALIB) == str(CALIB / "x")


def test_benchmark_frames_are_disjoint_from_calib_data():
    from vlacompile.data.calib import load_calib
    from vlacompile.sim.calib_set import benchmark_frames

    frames = benchmark_frames(5)
    assert len(frames) == 20 and min(f.episode for f in frames) == 15
    shipped = {(s.instruction, s.load_image().tobytes()) for s in load_calib(CALIB)}
    assert not shipped & {(f.instruction, f.load_image().tobytes()) for f in frames}
