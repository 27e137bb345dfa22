"""pi0 configuration and presets (docs/PI0.md).

pi0 = PaliGemma-3B (SigLIP-so400m/14 + a linear projector + Gemma-2B) and a Gemma-300M-like action
expert of the same depth, joined by per-layer joint attention, sampled by flow matching.
`pi0-tiny` keeps every count a compile flag refers to (18 VLM layers, 256 tokens per camera, a 50-step
horizon, 32-dim padded state and action, 10 flow steps, a 48-token prompt) with narrow widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class SiglipConfig:
    width: int
    depth: int
    heads: int
    mlp: int
    patch: int = 14
    image: int = 224
    eps: float = 1e-6

    @property
    def tokens(self) -> int:
        return (self.image // self.patch) ** 2


@dataclass(frozen=True)
class GemmaDims:
    width: int
    depth: int
    mlp: int
    heads: int = 8
    kv_heads: int = 1  # multi-query attention
    head_dim: int = 256
    vocab: int = 0  # 0: no embedding table (the action expert)
    eps: float = 1e-6
    rope_base: float = 10000.0


@dataclass(frozen=True)
class FlowConfig:
    steps: int = 10  # Euler steps from t = 1 (noise) to t = 0 (actions)
    min_period: float = 4e-3  # sinusoidal time embedding periods
    max_period: float = 4.0
    # The initial noise's standard deviation, a sampling temperature: pi0 draws it from N(0, 1). A
    # smaller one keeps the flow near its mean path (0: deterministic); the exported expert graph applies
    # it to the standard-normal noise it is given, so clients draw N(0, 1) whatever it is.
    noise_scale: float = 1.0


@dataclass(frozen=True)
class Pi0Config:
    name: str
    siglip: SiglipConfig
    vlm: GemmaDims
    expert: GemmaDims
    cameras: int  # camera slots; a missing image is masked out, as LeRobot does
    horizon: int = 50
    max_state_dim: int = 32
    max_action_dim: int = 32
    prompt_len: int = 48
    flow: FlowConfig = field(default_factory=FlowConfig)
    # Only for built-in synthetic weights; a real checkpoint ignores it.
    seed: int = 0

    @property
    def image_tokens(self) -> int:
        return self.cameras * self.siglip.tokens

    @property
    def prefix_len(self) -> int:
        return self.image_tokens + self.prompt_len

    @property
    def suffix_len(self) -> int:
        return 1 + self.horizon  # one state token, then the noisy actions


SIGLIP_SO400M_14 = SiglipConfig(width=1152, depth=27, heads=16, mlp=4304)
GEMMA_2B = GemmaDims(width=2048, depth=18, mlp=16384, vocab=257152)
GEMMA_300M = GemmaDims(width=1024, depth=18, mlp=4096)

PRESETS: dict[str, Pi0Config] = {
    # openpi's three camera slots: base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb.
    "pi0-base": Pi0Config(name="pi0-base", siglip=SIGLIP_SO400M_14, vlm=GEMMA_2B, expert=GEMMA_300M, cameras=3),
    # Joint attention concatenates both stacks' heads, so heads, kv_heads and head_dim must agree.
    "pi0-tiny": Pi0Config(
        name="pi0-tiny",
        siglip=replace(SIGLIP_SO400M_14, width=48, depth=3, heads=4, mlp=192),
        vlm=replace(GEMMA_2B, width=64, mlp=256, heads=4, head_dim=16, vocab=512),
        expert=replace(GEMMA_300M, width=32, mlp=128, heads=4, head_dim=16),
        cameras=2,
        # The flow starts at x = 0, pi0's noise's mean: of the temperatures 0, 0.25, 0.5, 0.75 and 1, the
        # best on validation episodes (docs/BENCHMARKS.md, "Sampling temperature"). pi0-base keeps pi0's 1.
        flow=FlowConfig(noise_scale=0.0),
        seed=20241031,
    ),
}
# pi0-tiny with its action expert twice as wide: does the expert's width limit pi0-tiny's success?
# widen.py grows a trained pi0-tiny into it.
PRESETS["pi0-tiny-wide"] = replace(PRESETS["pi0-tiny"], name="pi0-tiny-wide",
                                   expert=replace(PRESETS["pi0-tiny"].expert, width=64, mlp=256))

DEFAULT_PRESET = "pi0-tiny"
