"""pi0's graphs: vision / prefix (K/V cache out) / expert (unrolled flow loop), run by ONNX Runtime
and the deployed runtime against the PyTorch rewritten model."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from vlacompile.data.calib import CalibSample
from vlacompile.models.pi0 import export as pi0_export
from vlacompile.passes import (CacheConfig, CompressConfig, LayerDropConfig, MlpPruneConfig, TokenSelectConfig,
                               compress)

from ...conftest import CALIB

STATE = (0.2, 0.38, 0.35, 0.0, 1.0)


def _compressed(policy, pairing: str):
    config = CompressConfig(layers=LayerDropConfig(12, "random", 3, pairing), mlp=MlpPruneConfig(0.25),
                            tokens=TokenSelectConfig(tokens=128), cache=CacheConfig(5))
    return compress(policy.model, config, None)[0]


@pytest.fixture(scope="module")
def sample():
    return CalibSample(CALIB / "images" / "ep02_step07.png", "put the red block into the bowl", state=STATE)


@pytest.fixture(scope="module")
def compressed(pi0_tiny):
    return _compressed(pi0_tiny, "kv")


@pytest.fixture(scope="module")
def graphs(pi0_tiny, compressed, sample, tmp_path_factory):
    from vlacompile.export import ExportConfig, export

    trace = pi0_export.reference_tensors(pi0_tiny, compressed, sample, pi0_tiny.noise(0))
    provenance = {"compile": CompressConfig().to_json(), "passes": [], "calibration": {}}
    return export(pi0_tiny, compressed, tmp_path_factory.mktemp("pi0") / "graphs", ExportConfig(("fp32",)), trace,
                  provenance, progress=False).folder


@pytest.mark.parametrize("pairing", ["kv", "drop"])
def test_cache_layout_is_the_validity_each_cache_entry_carries(pi0_tiny, pi0_inputs, pairing):
    """The exported graphs' static grouping of cache entries equals what a prefix run produces."""
    model = _compressed(pi0_tiny, pairing)
    x = pi0_inputs
    with torch.no_grad():
        cache = model.prefix_kv(*model.embed_prefix(x["pixels"], x["image_valid"], x["ids"], x["ids_valid"]))
    first = cache.valid[0]
    assert pi0_export.cache_layout(model) == [0 if v is first else 1 for v in cache.valid]
    assert len(cache.keys) == (18 if pairing == "kv" else 12)
    assert [k.shape[2] for k in cache.keys] == [(512 + 48, 128 + 48)[g] for g in pi0_export.cache_layout(model)]


def test_each_graph_computes_the_rewritten_models_tensors(pi0_tiny, compressed, sample, graphs):
    """Every graph, fed the PyTorch tensors of another sample, returns PyTorch's outputs."""
    import onnxruntime

    other = replace(sample, image_path=CALIB / "images" / "ep05_step13.png", state=(0.5, 0.1, 0.2, 0.0, 0.0))
    want = pi0_export.reference_tensors(pi0_tiny, compressed, other, pi0_tiny.noise(7))
    for spec in pi0_export.graphs(compressed):
        session = onnxruntime.InferenceSession(str(graphs / f"{spec.name}.fp32.onnx"))
        got = session.run(None, {t.name: want[t.name] for t in spec.inputs})
        for t, value in zip(spec.outputs, got):
            np.testing.assert_allclose(value, want[t.name], atol=2e-4, rtol=1e-4, err_msg=f"{spec.name} {t.name}")


def test_runtime_predicts_what_the_rewritten_policy_predicts(pi0_tiny, compressed, graphs, tmp_path):
    """The deployed runtime's own preprocessing (aspect-preserving resize with padding, state
    normalization, prompt mask) and un-normalization give the PyTorch policy's actions, on a camera
    image that is not square."""
    from vlacompile.runtime import GraphPipeline

    image = Image.open(CALIB / "images" / "ep03_step30.png").convert("RGB").resize((320, 240))
    rewritten = replace(pi0_tiny, model=compressed)
    with GraphPipeline(graphs) as pipe:
        got = pipe.predict(image, "push the green block to the left", seed=4, state=STATE)
    want = rewritten.predict([image], "push the green block to the left", np.array(STATE), seed=4)
    assert got.shape == (50, 7) == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_runtime_refuses_a_missing_state_and_too_many_cameras(graphs, sample_image):
    from vlacompile.errors import UserError
    from vlacompile.runtime import GraphPipeline

    with GraphPipeline(graphs) as pipe:
        with pytest.raises(UserError, match="read the robot state"):
            pipe.predict(sample_image, "pick up the red block")
        with pytest.raises(UserError, match="got 3 camera images; these graphs take 1 to 2"):
            pipe.predict([sample_image] * 3, "pick up the red block", state=STATE)


def test_manifest_prompt_gives_lerobots_ids(pi0_tiny, graphs):
    """The runtime's prompt from the manifest alone: the newline LeRobot appends (once), truncation
    to 48 ids, right padding with its mask."""
    import json

    from vlacompile.runtime.prompt import Prompt

    prompt = Prompt.from_declaration(graphs, json.loads((graphs / "manifest.json").read_text())["prompt"])
    tok = pi0_tiny.tokenizer.tok
    ids, valid = prompt.masked("pick up the red block")
    real = [pi0_tiny.tokenizer.bos_id, *tok.encode("pick up the red block\n", add_special_tokens=False).ids]
    assert ids[: len(real)] == real and valid == [True] * len(real) + [False] * (48 - len(real))
    assert set(ids[len(real):]) == {pi0_tiny.tokenizer.pad_id}
    assert prompt.masked("pick up the red block\n") == (ids, valid)
    long_ids, long_valid = prompt.masked("pick up the red block " * 40)
    assert len(long_ids) == 48 and all(long_valid)


def test_an_independent_client_reproduces_the_pi0_runtime_from_the_manifest_alone(graphs, tmp_path):
    """tests/runtime/independent_client.py (no vlacompile, no torch), written from docs/CONTRACT.md's
    pi0 section, on images of other sizes, one or two camera slots, a long instruction."""
    import json
    import subprocess
    import sys

    from vlacompile.runtime import GraphPipeline

    from ...runtime.test_contract import CLIENT

    base = Image.open(CALIB / "images" / "ep03_step20.png").convert("RGB")
    frames = {"wide.png": base.resize((320, 240)), "tall.png": base.resize((200, 300)), "square.png": base}
    for name, image in frames.items():
        image.save(tmp_path / name)
    requests = [{"image": str(tmp_path / "wide.png"), "instruction": "Pick up the RED block", "seed": 0,
                 "state": [0.2, 0.38, 0.35, 0.0, 1.0]},
                {"image": [str(tmp_path / "tall.png"), str(tmp_path / "square.png")], "seed": 2**63 + 5,
                 "instruction": "put the apple into the bowl\n", "state": [0.5, -0.1, 0.2, 1.0, 0.0]},
                {"image": str(tmp_path / "square.png"), "instruction": "push the can to the left " * 30, "seed": 9,
                 "state": [0.0, 0.0, 0.1, 0.0, 1.0]}]
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(requests))
    done = subprocess.run([sys.executable, "-I", str(CLIENT), str(graphs), str(path), "fp32"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.asarray(json.loads(done.stdout))
    with GraphPipeline(graphs) as pipe:
        want = np.stack([pipe.predict([Image.open(p) for p in np.atleast_1d(r["image"])], r["instruction"],
                                      seed=r["seed"], state=r["state"]) for r in requests])
    assert got.shape == (3, 50, 7)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # The client drew standard-normal noise; the graph applied pi0-tiny's temperature, as declared.
    assert json.loads((graphs / "manifest.json").read_text())["noise"]["scale_in_graph"] == 0.0


def test_torch_backend_runs_pi0s_graph_modules_through_the_runtime(pi0_tiny, compressed, sample):
    """The torch backend (the graphs' modules in PyTorch, the runtime around them) gives the rewritten
    model's normalized actions: every K/V output reaches the expert by name."""
    from vlacompile.backends.torch import pipeline

    noise = pi0_tiny.noise(6)
    with pipeline(pi0_tiny, compressed, "cpu", "fp32", compile=False) as pipe:
        got = pipe.predict_normalized(sample.load_image(), sample.instruction, noise.numpy(), state=STATE)
    want = pi0_export.reference_actions(pi0_tiny, compressed, sample, noise)[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_half_prefix_ranks_tokens_in_float32_and_keeps_the_same_ones(pi0_tiny, compressed, pi0_inputs):
    """At fp16 the layers before the token selection stay float32 (half precision reorders tokens that
    nearly tie, and a swapped token is another cache entry): the cache entries they make equal the
    float model's on the image tokens to float32 rounding, and every entry after the selection holds
    the same tokens, so it differs from the float one by half rounding only."""
    x = pi0_inputs
    with torch.no_grad():
        images = compressed.embed_images(x["pixels"])
        args = (images, x["image_valid"], x["ids"], x["ids_valid"])
        want = pi0_export.PrefixGraph(compressed)(*args)
        got = pi0_export.PrefixGraph(pi0_export.for_export(compressed, "fp16"))(*args)
    layout = pi0_export.cache_layout(compressed)
    pairs = list(zip(want[2 + max(layout):], got[2 + max(layout):]))  # after offset and the validity groups
    entry_groups = [g for g in layout for _ in "kv"]  # k_i, v_i in output order
    span = slice(0, images.shape[1])  # the image rows: their layer-0 input is the graph's float32 input
    before = [p for p, g in zip(pairs, entry_groups) if g == 0]
    after = [p for p, g in zip(pairs, entry_groups) if g == 1]
    assert before and after
    w, g = before[0]
    torch.testing.assert_close(g[:, :, span], w[:, :, span], rtol=1e-5, atol=1e-5)
    for w, g in after:
        cosine = torch.nn.functional.cosine_similarity(w.flatten(), g.flatten(), dim=0)
        assert cosine > 0.9995 and (g - w).abs().max() < 0.05 * w.abs().max()
