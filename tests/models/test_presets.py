"""Presets: released dimensions, counts equal to the sum over real modules, and the tiny default's counts."""

import pytest

from vlacompile.costs import module_costs
from vlacompile.models.cogact.build import build_meta, state_shapes
from vlacompile.models.cogact.config import PRESETS

PUBLISHED_DIT = {"cogact-small": (6, 384, 4), "cogact-base": (12, 768, 12), "cogact-large": (24, 1024, 16)}


@pytest.mark.parametrize("name", list(PRESETS))
def test_param_count_is_the_sum_over_real_modules(name):
    model = build_meta(PRESETS[name])
    total = sum(c.params for c in module_costs(model))
    assert total == sum(s.numel() for s in state_shapes(name).values())
    assert all(p.device.type == "meta" for p in model.parameters())


def test_cogact_base_has_the_published_7_63b_parameters():
    assert round(sum(s.numel() for s in state_shapes("cogact-base").values()) / 1e9, 2) == 7.63


def test_llama_is_llama2_7b():
    llm = sum(s.numel() for k, s in state_shapes("cogact-base").items() if k.startswith("llm_backbone."))
    assert llm == 6_738_939_904  # Llama-2-7B with the vocabulary padded to 32064


@pytest.mark.parametrize("name,dims", PUBLISHED_DIT.items())
def test_released_dit_sizes(name, dims):
    dit = PRESETS[name].dit
    assert (dit.depth, dit.width, dit.heads) == dims


def test_tiny_keeps_the_counts_compile_flags_refer_to():
    cfg = PRESETS["cogact-tiny"]
    costs = {c.module: c for c in module_costs(build_meta(cfg))}
    assert cfg.llm.layers == 32 and cfg.visual_tokens == 256 and cfg.dino.image == 224 and cfg.dino.patch == 14
    assert (cfg.dit.chunk, cfg.dit.action_dim) == (16, 7) and cfg.sampler.steps == 10 and cfg.sampler.cfg_scale == 1.5
    assert costs["vision"].tokens_out == 256 and costs["action_head"].steps == 10


def test_flops_scale_with_what_runs():
    small, large = (module_costs(build_meta(PRESETS[n])) for n in ("cogact-small", "cogact-large"))
    assert small[0].flops == large[0].flops and small[1].flops == large[1].flops
    assert large[2].flops > 10 * small[2].flops
