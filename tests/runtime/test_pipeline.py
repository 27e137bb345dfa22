"""The ONNX Runtime pipeline: image + instruction -> the PyTorch rewritten model's actions, from the
manifest and graphs alone."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from vlacompile.errors import UserError
from vlacompile.runtime import GraphPipeline


def _fp16_gates(got, want):
    """The reduced-precision gates `validate` applies (GR00T's), here to each sample alone."""
    cosine = float(np.dot(got.ravel(), want.ravel()) / np.linalg.norm(got) / np.linalg.norm(want))
    assert np.abs(got - want).mean() <= 0.01 and cosine >= 0.999, (np.abs(got - want).mean(), cosine)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_ort_pipeline_gives_the_pytorch_actions(tiny, compiled, graphs, precision):
    with GraphPipeline(graphs, precision) as pipe:
        for i, sample in enumerate(compiled.heldout[:3]):
            image, noise = sample.load_image(), tiny.noise(i)
            pixels, ids = tiny.encode(image, sample.instruction)  # unpadded: the model's own prompt
            with torch.no_grad():
                want = compiled.model(pixels, ids, noise)[0].numpy()
            got = pipe.predict_normalized(image, sample.instruction, noise.numpy())
            if precision == "fp32":
                np.testing.assert_allclose(got, want, atol=1e-4)
            else:
                _fp16_gates(got, want)


def test_unnormalized_actions_match_the_policys_post_processing(tiny, compiled, graphs, sample_image):
    from vlacompile.runtime.postprocess import unnormalize

    noise = tiny.noise(3)
    with GraphPipeline(graphs) as pipe:
        actions = pipe.predict(sample_image, "pick up the red block", noise=noise.numpy())
        normalized = pipe.predict_normalized(sample_image, "pick up the red block", noise.numpy())
    assert actions.shape == (16, 7)
    np.testing.assert_array_equal(actions, unnormalize(normalized, tiny.statistics[tiny.unnorm_key()]))
    assert set(np.unique(actions[:, 6])) <= {0.0, 1.0}


def test_runtime_imports_no_model_code_and_no_transformers(graphs):
    # torch itself may load here: Polygraphy's ONNX Runtime runner imports it, when installed, to
    # check whether feeds are torch tensors. On a device without torch nothing asks for it.
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from vlacompile.runtime import GraphPipeline\n"
        f"pipe = GraphPipeline({str(graphs)!r})\n"
        "a = pipe.predict(Image.new('RGB', (320, 240), (90, 120, 60)), 'pick up the red block', seed=1)\n"
        "assert a.shape == (16, 7), a.shape\n"
        "banned = ('transformers', 'vlacompile.models', 'vlacompile.passes', 'vlacompile.export')\n"
        "loaded = [m for m in banned if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_truncated_graph_is_refused_by_name(graphs, tmp_path):
    import shutil

    folder = tmp_path / "g"
    shutil.copytree(graphs, folder)
    path = folder / "llm.fp32.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="llm.fp32.onnx does not match its sha256"):
        GraphPipeline(folder)


def test_a_prompt_over_the_static_budget_is_refused(graphs, sample_image):
    with GraphPipeline(graphs) as pipe, pytest.raises(UserError, match="shorten it"):
        pipe.predict(sample_image, " ".join(["pick up the red block"] * 20))


def test_a_missing_precision_says_which_exist(graphs):
    with pytest.raises(UserError, match="has no bf16 graphs"):
        GraphPipeline(graphs, "bf16")


@pytest.fixture(scope="module")
def uncompressed_graphs(tiny, tmp_path_factory):
    """The embedded model with every pass off, exported fp32: the graphs compute `predict`'s model."""
    from vlacompile.data.calib import CalibSample
    from vlacompile.export import ExportConfig, export
    from vlacompile.models import export_declaration
    from vlacompile.passes import CompressConfig

    from ..conftest import CALIB

    sample = CalibSample(CALIB / "images" / "ep02_step07.png", "pick up the red block")
    trace = export_declaration(tiny).reference_tensors(tiny, tiny.model, sample, tiny.noise(0))
    provenance = {"compile": CompressConfig().to_json(), "passes": [], "calibration": {}}
    return export(tiny, tiny.model, tmp_path_factory.mktemp("plain") / "graphs", ExportConfig(("fp32",)), trace,
                  provenance, progress=False).folder


def test_a_seed_means_the_same_noise_and_actions_in_pytorch_and_in_the_graphs(tiny, uncompressed_graphs,
                                                                               sample_image):
    """`predict --seed N` (PyTorch) and `run --seed N` (graphs) of the same model agree."""
    with GraphPipeline(uncompressed_graphs) as pipe:
        for seed in (0, 7, 2**64 - 1):
            np.testing.assert_array_equal(pipe.noise(seed), tiny.noise(seed).numpy())
            np.testing.assert_allclose(pipe.predict(sample_image, "pick up the red block", seed=seed),
                                       tiny.predict(sample_image, "pick up the red block", seed=seed), atol=1e-5)
    assert not np.allclose(tiny.noise(0).numpy(), tiny.noise(1).numpy())
    # the generator the manifest names, evaluated as written
    m = pipe.manifest["noise"]
    drawn = eval(m["generator"], {"numpy": np}, {"seed": 7, "shape": tuple(m["shape"])})  # noqa: S307
    np.testing.assert_array_equal(drawn, tiny.noise(7).numpy())


def test_predict_and_run_agree_from_the_command_line(uncompressed_graphs, tmp_path):
    import json

    from click.testing import CliRunner

    from vlacompile.cli import main

    from ..conftest import CALIB

    image = str(CALIB / "images" / "ep04_step15.png")
    args = ["--image", image, "--instruction", "put the apple into the bowl", "--seed", "12345", "--json"]
    predicted = CliRunner().invoke(main, ["predict", *args])
    ran = CliRunner().invoke(main, ["run", "--bundle", str(uncompressed_graphs), "--allow-unvalidated", *args])
    assert predicted.exit_code == 0 and ran.exit_code == 0, predicted.output + ran.output
    np.testing.assert_allclose(json.loads(predicted.output)["actions"], json.loads(ran.output)["actions"], atol=2e-5)


def _resealed(graphs, tmp_path, edit):
    """A copy of the graphs whose manifest says something else, properly re-sealed (as a future or
    hand-made export would be)."""
    import shutil

    from vlacompile.runtime import manifest

    folder = tmp_path / "graphs"
    shutil.copytree(graphs, folder)
    m = manifest.read(folder)
    edit(m)
    manifest.seal(folder, m, [])
    return folder


def test_the_runtime_follows_the_manifest_not_its_own_constants(graphs, tmp_path, sample_image):
    """A bilinear resize and another gripper column, declared in the manifest, are what it does."""
    from PIL import Image

    from vlacompile.runtime.preprocess import preprocess

    def edit(m):
        m["preprocess"]["resize"] = "bilinear"
        m["postprocess"]["gripper_dim"] = 2

    folder = _resealed(graphs, tmp_path, edit)
    sample_image = sample_image.resize((320, 320))  # at 224 px either filter is the identity
    with GraphPipeline(folder) as pipe, GraphPipeline(graphs) as usual:
        pixels = pipe.inputs(sample_image, "pick up the red block", pipe.noise(0))["pixels"]
        x = np.asarray(sample_image.resize((224, 224), Image.Resampling.BILINEAR), np.float32).transpose(2, 0, 1) / 255
        np.testing.assert_allclose(pixels[0, :3], (x - np.asarray([0.485, 0.456, 0.406], np.float32)[:, None, None])
                                   / np.asarray([0.229, 0.224, 0.225], np.float32)[:, None, None], atol=1e-6)
        assert not np.allclose(pixels, preprocess(sample_image, usual.manifest["preprocess"]))
        actions = pipe.predict(sample_image, "pick up the red block", seed=1)
    # column 2 is now the binarized one: 0 or 1, then mapped to [q01, q99] where the mask says so
    (entry,) = json.loads((folder / "dataset_statistics.json").read_text()).values()
    q01, q99, mask = (entry["action"][k][2] for k in ("q01", "q99", "mask"))
    allowed = [0.5 * (v + 1) * (q99 - q01) + q01 if mask else v for v in (0.0, 1.0)]
    assert all(np.isclose(v, allowed).any() for v in np.unique(actions[:, 2])), (np.unique(actions[:, 2]), allowed)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m["preprocess"].update(resize="area"), "preprocessing asks for resize 'area'"),
    (lambda m: m["preprocess"].update(layout="NHWC"), "layout 'NHWC'"),
    (lambda m: m["prompt"].update(bos="always"), "prompt asks for bos 'always'"),
    (lambda m: m["prompt"].update(padding="left"), "padding 'left'"),
    (lambda m: m["postprocess"].update(unnormalize="mean_std"), "post-processing ('mean_std'"),
])
def test_a_manifest_asking_for_what_the_runtime_does_not_do_is_refused(graphs, tmp_path, edit, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        GraphPipeline(_resealed(graphs, tmp_path, edit))


def test_a_noise_generator_the_runtime_does_not_know_is_refused_but_noise_can_be_given(graphs, tmp_path, sample_image):
    folder = _resealed(graphs, tmp_path, lambda m: m["noise"].update(generator="torch.randn(shape)"))
    with GraphPipeline(folder) as pipe:
        with pytest.raises(UserError, match="noise generator 'torch.randn"):
            pipe.predict(sample_image, "pick up the red block", seed=0)
        assert pipe.predict(sample_image, "pick up the red block", noise=np.zeros((1, 16, 7))).shape == (16, 7)
