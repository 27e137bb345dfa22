"""Parameter counts: pi0-base against the sizes confirmed from LeRobot's modules (docs/PI0.md §2)."""

from vlacompile.models.pi0.build import build_meta, state_shapes
from vlacompile.models.pi0.config import PRESETS
from vlacompile.models.pi0.costs import model_param_counts, param_counts

# LeRobot 0.6.1's PI0Pytorch built on the meta device (shared/pi0-notes.md §1), lm_heads excluded.
CONFIRMED = {"vision": 412_442_352, "projector": 2_361_344, "llm": 2_508_531_712, "vlm": 2_923_335_408,
             "expert": 311_464_960, "suffix": 3_248_160, "total": 3_238_048_528}


def test_pi0_base_parts_are_the_confirmed_sizes():
    assert param_counts("pi0-base") == {**CONFIRMED}


def test_gemma_2b_is_its_embedding_plus_18_layers():
    per_layer = 2048 * 2048 * 2 + 256 * 2048 * 2 + 3 * 2048 * 16384 + 2 * 2048  # q, o; k, v (MQA); GeGLU; norms
    assert param_counts("pi0-base")["llm"] == 257152 * 2048 + 18 * per_layer + 2048


def test_counts_are_the_sum_over_the_modules():
    for name in PRESETS:
        counts = model_param_counts(build_meta(PRESETS[name]))
        assert counts == param_counts(name)
        assert counts["total"] == sum(s.numel() for s in state_shapes(name).values())


def test_tiny_keeps_the_counts_compile_flags_refer_to():
    cfg = PRESETS["pi0-tiny"]
    assert (cfg.vlm.depth, cfg.expert.depth, cfg.siglip.tokens, cfg.horizon) == (18, 18, 256, 50)
    assert (cfg.max_state_dim, cfg.max_action_dim, cfg.flow.steps, cfg.prompt_len) == (32, 32, 10, 48)
    assert (cfg.siglip.image, cfg.siglip.patch, cfg.vlm.kv_heads, cfg.expert.kv_heads) == (224, 14, 1, 1)
    assert 2 <= cfg.cameras <= 3
