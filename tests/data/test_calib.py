"""The shipped calibration set, and an error naming the file and line for every bad input."""

import json
import shutil

import pytest
from PIL import Image

from vlacompile.data.calib import load_calib
from vlacompile.errors import UserError

from ..conftest import CALIB


def test_shipped_set_has_enough_varied_real_scenes():
    samples = load_calib(CALIB)
    assert len(samples) >= 32
    assert len({s.instruction for s in samples}) >= 8
    for s in samples:
        with Image.open(s.image_path) as im:
            assert im.mode == "RGB" and min(im.size) >= 224
    im = samples[0].load_image()
    colours = len(im.resize((64, 64)).getcolors(maxcolors=64 * 64))
    assert colours > 200, "a rendered scene has shading, not a few flat colours"


@pytest.fixture()
def calib_copy(tmp_path):
    root = tmp_path / "calib"
    shutil.copytree(CALIB, root)
    return root


def _write_manifest(root, records):
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")


GOOD = {"image": "images/ep00_step00.png", "instruction": "pick up the red block", "episode": 0, "step": 0}


def _make_image(root, name, mode, size):
    Image.new(mode, size).save(root / name)
    return name


@pytest.mark.parametrize("record,message", [
    ('{"image": "images/ep00_step00.png", "instruction": ', "malformed JSON"),
    ('["images/ep00_step00.png"]', "expected a JSON object"),
    ({"image": "images/missing.png", "instruction": "x"}, "does not exist"),
    ({**GOOD, "instruction": "   "}, "'instruction' is missing or empty"),
    ({"image": "images/ep00_step00.png"}, "'instruction' is missing or empty"),
    ({**GOOD, "step": "one"}, "'step' must be an integer"),
])
def test_bad_lines_name_file_and_line(calib_copy, record, message):
    _write_manifest(calib_copy, [GOOD, record])
    with pytest.raises(UserError, match=message) as err:
        load_calib(calib_copy)
    assert f"{calib_copy / 'manifest.jsonl'}:2:" in str(err.value)


@pytest.mark.parametrize("mode,size,message", [
    ("L", (256, 256), "is L, expected RGB"),
    ("RGBA", (256, 256), "is RGBA, expected RGB"),
    ("RGB", (200, 256), "is 200x256, expected at least 224x224"),
])
def test_wrong_mode_or_size(calib_copy, mode, size, message):
    name = _make_image(calib_copy, "odd.png", mode, size)
    _write_manifest(calib_copy, [{"image": name, "instruction": "x"}])
    with pytest.raises(UserError, match=message):
        load_calib(calib_copy)


def test_unreadable_image(calib_copy):
    (calib_copy / "broken.png").write_bytes(b"\x89PNG not really")
    _write_manifest(calib_copy, [{"image": "broken.png", "instruction": "x"}])
    with pytest.raises(UserError, match="broken.png is unreadable"):
        load_calib(calib_copy)


def test_missing_manifest_and_empty_set(tmp_path):
    with pytest.raises(UserError, match="manifest.jsonl does not exist"):
        load_calib(tmp_path)
    (tmp_path / "manifest.jsonl").write_text("\n")
    with pytest.raises(UserError, match="has no samples"):
        load_calib(tmp_path)
