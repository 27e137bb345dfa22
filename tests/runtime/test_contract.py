"""The manifest is a complete contract: a client written from it alone (tests/runtime/
independent_client.py: onnxruntime, numpy, PIL, tokenizers, no vlacompile) gives the runtime's
actions, and docs/CONTRACT.md's worked example is what the runtime computes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlacompile.package import package
from vlacompile.runtime import load

from ..conftest import CALIB, REPO

CLIENT = Path(__file__).with_name("independent_client.py")


@pytest.fixture(scope="module")
def bundle(graphs, validated, tmp_path_factory):
    return package(graphs, tmp_path_factory.mktemp("contract") / "bundle")[0]


@pytest.fixture(scope="module")
def requests(tmp_path_factory) -> list[dict]:
    """Images a camera might give: other sizes and aspect ratios, RGBA, grayscale, palette."""
    folder = tmp_path_factory.mktemp("frames")
    base = Image.open(CALIB / "images" / "ep03_step20.png").convert("RGB")
    frames = {"wide.png": base.resize((320, 240)), "tall.jpg": base.resize((200, 300)),
              "rgba.png": Image.open(CALIB / "images" / "ep05_step06.png").convert("RGBA"),
              "gray.png": Image.open(CALIB / "images" / "ep07_step24.png").convert("L"),
              "palette.png": Image.open(CALIB / "images" / "ep01_step00.png").convert("P")}
    for name, image in frames.items():
        image.save(folder / name)
    instructions = ["Pick up the RED block", "place the sponge on the plate", "put the apple into the bowl",
                    "push the can to the left ", "open the drawer"]
    return [{"image": str(folder / name), "instruction": text, "seed": seed}
            for (name, text, seed) in zip(frames, instructions, [0, 1, 2**63 + 5, 41, 7])]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_an_independent_client_reproduces_the_runtime_from_the_manifest_alone(bundle, requests, tmp_path, precision):
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(requests))
    # -I: isolated (no PYTHONPATH, no user site, script folder not on sys.path); the client also
    # makes `import vlacompile` impossible and checks that neither it nor torch was loaded.
    done = subprocess.run([sys.executable, "-I", str(CLIENT), str(bundle), str(path), precision],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.asarray(json.loads(done.stdout))
    with load(bundle, precision) as policy:
        want = np.stack([policy.predict(Image.open(r["image"]), r["instruction"], seed=r["seed"]) for r in requests])
    assert got.shape == (len(requests), 16, 7)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_the_contract_documents_what_the_runtime_computes(graphs):
    """docs/CONTRACT.md's worked example, recomputed from the default build's graphs (the session
    fixture uses `vlacompile build`'s defaults)."""
    from vlacompile.contract_example import IMAGE, compute, parse

    stale = "docs/CONTRACT.md is stale: refresh it with `python -m vlacompile.contract_example`"
    doc = parse((REPO / "docs" / "CONTRACT.md").read_text())
    got = compute(graphs, REPO / IMAGE)
    assert doc["input_ids"] == got["input_ids"] and doc["cognition_index"] == got["cognition_index"], stale
    for key in ("pixels[0, 0, 112, 100:106]", "pixels[0, 3, 112, 100:106]", "noise[0, 0, :]"):
        np.testing.assert_allclose(doc[key], got[key], rtol=1e-6, atol=1e-6, err_msg=stale)
    np.testing.assert_allclose(doc["normalized actions[0, 0, :]"], got["normalized actions[0, 0, :]"], atol=1e-5,
                               err_msg=stale)
    np.testing.assert_allclose(doc["actions"], got["actions"], atol=1e-5, err_msg=stale)
    assert np.asarray(doc["actions"]).shape == (16, 7)
