"""`--layer-method actions`, on pi0 (the search itself is family-free): the greedy layer search over
the calibration actions (calibration/layer_search.py), the pass that applies it, and its storage with
the calibration."""

import copy
import json

import pytest
import torch

from vlacompile import calibration, pipeline
from vlacompile.calibration import layer_search
from vlacompile.cli.compile_options import compress_config
from vlacompile.data.calib import load_calib, split_heldout
from vlacompile.errors import UserError
from vlacompile.passes import layer_drop
from vlacompile.passes.layer_drop import LayerDropConfig


from ...conftest import CALIB, small_calib_folder as _calib_folder


def _with_idle_layers(policy, idle: list[int]):
    """A copy of `policy` whose VLM layers `idle` add nothing to the residual stream (attention and MLP
    outputs zeroed): dropping them changes no action, whatever else is dropped."""
    twin = copy.copy(policy)
    twin.model = copy.deepcopy(policy.model)
    with torch.no_grad():
        for i in idle:
            layer = twin.model.vlm.layers[i]
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return twin


def test_the_search_drops_the_free_layer_then_the_layers_that_compute_nothing(pi0_tiny):
    """Hand-worked: under kv pairing pi0's last VLM layer is free (its output feeds nothing), and two
    layers made to add nothing cost nothing to drop; every other layer moves the actions. So the
    search drops 17, then 4 and 9 (ties go to the lower index) at deviation 0, then a layer that costs."""
    policy = _with_idle_layers(pi0_tiny, [9, 4])
    samples = split_heldout(load_calib(CALIB))[0][:1]
    order, deviation = layer_search.extend([], [], policy, samples, "kv", 4, progress=False)
    assert order[:3] == [17, 4, 9]
    assert deviation[:3] == pytest.approx([0, 0, 0], abs=1e-12)
    assert deviation[3] > 1e-6 and order[3] not in (4, 9, 17)
    again, _ = layer_search.extend(order[:2], deviation[:2], policy, samples, "kv", 4, progress=False)
    assert again == order  # continuing a shorter search gives the same order: one search serves every depth


def test_candidates_in_worker_processes_score_as_here_at_one_thread_bit_for_bit(pi0_tiny):
    """Two forked processes of one thread each against this process at one thread: the same
    deviations, not just close ones, so the greedy choice and its ties do not depend on the workers."""
    samples = split_heldout(load_calib(CALIB))[0][:1]
    candidates = [[17], [3], [3, 9], [12], [0, 17]]
    judge = layer_search._Judge(pi0_tiny, samples, "drop", one_thread=True)
    pooled = list(layer_search._deviations(judge, candidates, 2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = list(layer_search._deviations(judge, candidates, 0))
    finally:
        torch.set_num_threads(threads)
    assert pooled == here and all(d > 0 for d in here) and len(set(here)) == len(here)


def _calib(order: list[int], pairing: str = "kv"):
    meta = {"layer_search": {pairing: {"order": order, "deviation": [0.1 * i for i in range(len(order))]}}}
    return calibration.Calibration(meta, torch.zeros(0), torch.zeros(0))


def test_layer_drop_by_actions_drops_the_searchs_first_layers(pi0_tiny):
    calib = _calib([17, 3, 8, 1])
    _, record = layer_drop.apply(pi0_tiny.model, LayerDropConfig(15, "actions", pairing="kv"), calib)
    assert record.changes["dropped_layers"] == [3, 8, 17]
    assert record.changes["search_deviation"] == pytest.approx([0, 0.1, 0.2])
    new, record = layer_drop.apply(pi0_tiny.model, LayerDropConfig(14, "actions", pairing="kv"), calib)
    assert record.changes["kept_layers"] == [0, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16]
    assert len(new.vlm.layers) == 14
    with pytest.raises(UserError, match="layer search under pairing kv drops 4 layers, not 5") as err:
        layer_drop.apply(pi0_tiny.model, LayerDropConfig(13, "actions", pairing="kv"), calib)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="drops 0 layers"):  # a search under the other pairing is not this one's
        layer_drop.apply(pi0_tiny.model, LayerDropConfig(15, "actions", pairing="drop"), calib)


def test_the_search_is_stored_with_the_calibration_and_continued_by_a_deeper_build(pi0_tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(layer_search, "SEARCH_SAMPLES", 2)
    data, cache = _calib_folder(tmp_path / "data"), tmp_path / "cache"
    config = compress_config(18, 256, 16, 256, 0, 1, "none", 2, layer_method="actions", expert_pairing="kv")
    first = pipeline.rewrite(pi0_tiny, config, data, cache, progress=False)
    stored = json.loads((first.calib.path / "calibration.json").read_text())["layer_search"]["kv"]
    assert len(stored["order"]) == 2 and stored["order"][0] == 17 and stored["samples"] == [0, len(first.calib_set) - 1]
    assert first.records[0].changes["dropped_layers"] == sorted(stored["order"])
    monkeypatch.setattr(layer_search, "_Judge", None)  # a second build of the same depth runs no model
    again = pipeline.rewrite(pi0_tiny, config, data, cache, progress=False)
    assert again.reused and again.records[0].changes == first.records[0].changes
    monkeypatch.undo()
    monkeypatch.setattr(layer_search, "SEARCH_SAMPLES", 2)
    deeper = pipeline.rewrite(pi0_tiny, compress_config(18, 256, 15, 256, 0, 1, "none", 2, layer_method="actions",
                                                        expert_pairing="kv"), data, cache, progress=False)
    order = calibration.load(deeper.calib.path).layer_search("kv")["order"]  # digests still hold
    assert order[:2] == stored["order"] and len(order) == 3


def test_pi0_chooses_its_layers_by_the_actions_and_cogact_by_eq1_unless_told():
    """The families' measured defaults (BENCHMARKS "Choosing the layers by the actions")."""
    from vlacompile.cli.compile_options import config_for
    from vlacompile.models import resolve_config

    flags = {"mlp_sparsity": 0.25, "cache_interval": 5, "token_method": "efficientvla", "select_layer": 2}
    assert config_for(resolve_config("pi0-tiny"), **flags).layers.method == "actions"
    assert config_for(resolve_config("cogact-tiny"), **flags).layers.method == "importance"
    assert config_for(resolve_config("pi0-tiny"), layer_method="importance", **flags).layers.method == "importance"


@pytest.mark.parametrize("family, pairing", [("pi0", "kv"), ("pi0", "drop"), ("cogact", "drop")])
def test_a_search_candidate_shares_the_weights_and_leaves_the_model_whole(pi0_tiny, tiny, family, pairing):
    """The search's candidates are module-tree copies (passes/record.structure_copy): a candidate
    computes what a deep copy with the same layers dropped computes, holds no weight of its own, and
    the policy's model keeps every layer and its outputs."""
    from vlacompile.models import export_declaration
    from vlacompile.passes.family import target_of
    from vlacompile.passes.record import structure_copy

    policy = pi0_tiny if family == "pi0" else tiny
    sample = split_heldout(load_calib(CALIB))[0][0].loaded()
    outputs = export_declaration(policy).fidelity_outputs
    before = outputs(policy, policy.model, sample, policy.noise(0))[1]
    n = len(target_of(policy.model).layers())
    kept = [i for i in range(n) if i not in (2, 5)]
    candidate, deep = structure_copy(policy.model), copy.deepcopy(policy.model)
    for model in (candidate, deep):
        target_of(model).keep_layers(kept, pairing)
    weights = {p.data_ptr() for p in [*policy.model.parameters(), *policy.model.buffers()]}
    assert {p.data_ptr() for p in [*candidate.parameters(), *candidate.buffers()]} <= weights
    assert torch.equal(outputs(policy, candidate, sample, policy.noise(0))[1],
                       outputs(policy, deep, sample, policy.noise(0))[1])
    assert len(target_of(policy.model).layers()) == n
    assert torch.equal(outputs(policy, policy.model, sample, policy.noise(0))[1], before)
