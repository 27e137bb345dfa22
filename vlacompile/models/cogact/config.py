"""CogACT configuration and presets (field-notes §1).

The three released sizes share one VLM (DINOv2-L/14-reg4 + SigLIP-so400m/14, Llama-2-7B) and differ
only in the DiT action head. `cogact-tiny` keeps every count that a compile flag refers to (32 LLM
layers, 256 visual tokens, a 16x7 chunk, 10 guided DDIM steps) with narrow widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ViTConfig:
    width: int
    depth: int
    heads: int
    mlp: int
    registers: int  # DINOv2-reg4: 4; SigLIP: 0
    class_token: bool
    layer_scale: bool
    gelu_tanh: bool  # SigLIP was trained with the tanh GELU (big_vision), DINOv2 with the exact one
    attn_pool: bool  # SigLIP's MAP head: in the released weights, never run by the VLA
    patch: int = 14
    image: int = 224

    @property
    def prefix_tokens(self) -> int:
        return int(self.class_token) + self.registers

    @property
    def patch_tokens(self) -> int:
        return (self.image // self.patch) ** 2


@dataclass(frozen=True)
class LlamaDims:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int  # padded to a multiple of 64, as in Prismatic
    rms_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_positions: int = 2048


@dataclass(frozen=True)
class DiTConfig:
    width: int
    depth: int
    heads: int
    action_dim: int = 7
    chunk: int = 16  # future window 15 + the current step
    freq_dim: int = 256
    mlp_ratio: int = 4


@dataclass(frozen=True)
class SamplerConfig:
    train_steps: int = 100
    steps: int = 10
    cfg_scale: float = 1.5
    schedule: str = "squaredcos_cap_v2"

    @property
    def timesteps(self) -> list[int]:
        """Respaced DDIM timesteps, noisiest first: 90, 80, ..., 0 for 10 of 100."""
        stride = self.train_steps // self.steps
        return list(range(0, self.train_steps, stride))[::-1]


@dataclass(frozen=True)
class CogACTConfig:
    name: str
    dino: ViTConfig
    siglip: ViTConfig
    llm: LlamaDims
    dit: DiTConfig
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    # Static budget of prompt tokens (BOS excluded, the two appended ids included). The compiled
    # graphs pad to it, and `info` counts FLOPs at it.
    text_len: int = 32
    # Only for built-in synthetic weights (cogact-tiny); a real checkpoint ignores it.
    seed: int = 0

    @property
    def vision_dim(self) -> int:
        return self.dino.width + self.siglip.width

    @property
    def visual_tokens(self) -> int:
        return self.dino.patch_tokens

    @property
    def dit_variant(self) -> str:
        return {(6, 384): "DiT-S", (12, 768): "DiT-B", (24, 1024): "DiT-L"}.get(
            (self.dit.depth, self.dit.width), f"DiT-{self.dit.depth}x{self.dit.width}"
        )


DINO_L14_REG4 = ViTConfig(
    width=1024, depth=24, heads=16, mlp=4096, registers=4, class_token=True,
    layer_scale=True, gelu_tanh=False, attn_pool=False,
)
SIGLIP_SO400M_14 = ViTConfig(
    width=1152, depth=27, heads=16, mlp=4304, registers=0, class_token=False,
    layer_scale=False, gelu_tanh=True, attn_pool=True,
)
LLAMA2_7B = LlamaDims(hidden=4096, layers=32, heads=32, intermediate=11008, vocab=32064)

_RELEASED_DITS = {
    "cogact-small": DiTConfig(width=384, depth=6, heads=4),
    "cogact-base": DiTConfig(width=768, depth=12, heads=12),
    "cogact-large": DiTConfig(width=1024, depth=24, heads=16),
}

PRESETS: dict[str, CogACTConfig] = {
    name: CogACTConfig(name=name, dino=DINO_L14_REG4, siglip=SIGLIP_SO400M_14, llm=LLAMA2_7B, dit=dit)
    for name, dit in _RELEASED_DITS.items()
}

PRESETS["cogact-tiny"] = CogACTConfig(
    name="cogact-tiny",
    dino=replace(DINO_L14_REG4, width=48, depth=4, heads=4, mlp=192),
    siglip=replace(SIGLIP_SO400M_14, width=56, depth=4, heads=4, mlp=208),
    llm=LlamaDims(hidden=64, layers=32, heads=4, intermediate=176, vocab=320),
    # A DiT twice as wide as the LLM: measured with an oracle condition, width 128 learns the
    # 16x7 chunk faster than 64 at a cost that is small next to the 32-layer LLM.
    dit=DiTConfig(width=128, depth=4, heads=4),
    seed=20240521,
)

DEFAULT_PRESET = "cogact-tiny"
