"""A folder `vlacompile train` wrote is a --model value: it loads checked against its own record, and
it is the same policy as the embedded one when it holds the same files."""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from vlacompile.cli import main
from vlacompile.errors import UserError
from vlacompile.models import resolve, resolve_config
from vlacompile.models.cogact.embedded import EMBEDDED


@pytest.fixture
def trained(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("weights.safetensors", "dataset_statistics.json", "training.json"):
        shutil.copy(EMBEDDED / name, folder / name)
    return folder


def test_a_trained_folder_is_the_policy_it_holds(trained, tiny, sample_image):
    policy = resolve(str(trained))
    assert resolve_config(str(trained)) == tiny.cfg
    instruction = "pick up the red block"
    np.testing.assert_array_equal(policy.predict(sample_image, instruction, seed=3),
                                  tiny.predict(sample_image, instruction, seed=3))


def test_a_tampered_trained_folder_is_refused_in_one_line(trained):
    data = bytearray((trained / "weights.safetensors").read_bytes())
    data[-1] ^= 1
    (trained / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the sha256 in training.json"):
        resolve(str(trained))
    out = CliRunner().invoke(main, ["info", "--model", str(trained)])
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "Traceback" not in out.output


def test_a_trained_folder_of_an_unknown_preset_is_refused(trained):
    record = (trained / "training.json").read_text().replace('"preset": "cogact-tiny"', '"preset": "cogact-huge"')
    (trained / "training.json").write_text(record)
    with pytest.raises(UserError, match="preset 'cogact-huge' is not a CogACT preset"):
        resolve(str(trained))
