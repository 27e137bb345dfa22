"""pi0: PaliGemma (SigLIP + Gemma-2B) with a Gemma action expert, sampled by flow matching (docs/PI0.md)."""

from .config import DEFAULT_PRESET, PRESETS, Pi0Config
from .model import Pi0, PrefixKV
from .policy import Pi0Policy

__all__ = ["DEFAULT_PRESET", "PRESETS", "Pi0", "Pi0Config", "Pi0Policy", "PrefixKV"]
