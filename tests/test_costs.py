"""FLOPs of a small model are counted on CPU tensors (costs.counting_model): they must be the counts
the meta device gives, for both families, before and after the rewrite."""

import pytest

from vlacompile import costs


@pytest.mark.parametrize("name", ["cogact-tiny", "pi0-tiny"])
def test_small_models_count_on_the_cpu_what_the_meta_device_counts(name, monkeypatch):
    import torch

    from vlacompile.cli.compile_options import config_for
    from vlacompile.models import resolve

    cfg = resolve(name).cfg
    config = config_for(cfg, mlp_sparsity=0.25, cache_interval=5, token_method="efficientvla", select_layer=2,
                        token_weighting="auto")
    state = torch.random.get_rng_state()
    on_cpu = costs.before_after(cfg, config)
    assert torch.equal(torch.random.get_rng_state(), state)  # counting draws nothing a build draws later
    monkeypatch.setattr(costs, "CPU_PARAMS", 0)  # every model on the meta device, as large ones are
    on_meta = costs.before_after(cfg, config)
    assert on_cpu == on_meta and all(c.flops > 0 for c in on_cpu[0] + on_cpu[1])
    # attention is counted: on CPU tensors a fused kernel without a formula would have left it out
    assert on_cpu[0][1].flops > 2 * sum(c.params for c in on_cpu[0][1:2]) * (256 + 33)
