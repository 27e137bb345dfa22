"""transformers configurations with pi0-tiny's dimensions, for the tests that compare against transformers."""

from vlacompile.models.pi0.config import PRESETS

TINY = PRESETS["pi0-tiny"]


def gemma_config(dims):
    from transformers import GemmaConfig

    return GemmaConfig(hidden_size=dims.width, intermediate_size=dims.mlp, num_hidden_layers=dims.depth,
                       num_attention_heads=dims.heads, num_key_value_heads=dims.kv_heads, head_dim=dims.head_dim,
                       vocab_size=dims.vocab or 8, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=dims.eps,
                       rope_theta=dims.rope_base, attn_implementation="eager")


def siglip_config(cfg):
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(hidden_size=cfg.width, intermediate_size=cfg.mlp, num_hidden_layers=cfg.depth,
                              num_attention_heads=cfg.heads, image_size=cfg.image, patch_size=cfg.patch,
                              hidden_act="gelu_pytorch_tanh", layer_norm_eps=cfg.eps, vision_use_head=False)
