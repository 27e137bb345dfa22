"""The passes reach a model only through its family's PassTarget (passes.family)."""

import re
from pathlib import Path

import pytest
import torch

import vlacompile
from vlacompile.errors import UserError
from vlacompile.passes import LayerDropConfig, layer_drop

PACKAGE = Path(vlacompile.__file__).parent
# What only a family may name: CogACT's module attributes.
FAMILY_NAMES = re.compile(r"\b(llm_backbone|action_model|vision_backbone|projector)\b")


@pytest.mark.parametrize("folder", ["passes", "calibration"])
def test_passes_and_calibration_name_no_family_attribute(folder):
    offending = [f"{path.name}:{n}" for path in sorted((PACKAGE / folder).glob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if FAMILY_NAMES.search(line.split("#")[0]) and path.name != "family.py"]
    assert offending == []


def test_a_model_without_a_pass_target_is_refused_with_one_line():
    with pytest.raises(UserError, match="declares no PassTarget"):
        layer_drop.apply(torch.nn.Linear(2, 2), LayerDropConfig(keep=1))


def test_the_unrolled_loop_recomputing_every_step_is_the_sampler(tiny, encoded):
    from vlacompile.passes.cache import CachedDenoiser

    pixels, ids, noise = encoded
    target = tiny.model.pass_target()
    cognition = tiny.model.cognition(pixels, ids)
    with torch.no_grad():
        unrolled = CachedDenoiser(target.denoising_loop(), 1)(tiny.model.action_model.net, cognition, noise)
    torch.testing.assert_close(unrolled, tiny.model.act(cognition, noise), atol=1e-5, rtol=1e-5)
