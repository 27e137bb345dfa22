"""CogACT: DINOv2 + SigLIP vision, Llama-2 LLM, DiT action head (field-notes §1)."""

from .config import DEFAULT_PRESET, PRESETS, CogACTConfig
from .model import PARTS, CogACT
from .policy import CogACTPolicy

__all__ = ["DEFAULT_PRESET", "PARTS", "PRESETS", "CogACT", "CogACTConfig", "CogACTPolicy"]
