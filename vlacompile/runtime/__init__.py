"""The deployment side: image + instruction -> actions from exported graphs and their manifest.

Imports numpy, PIL, tokenizers and the chosen backend only: no torch, no model code, no
transformers, so it runs on a robot that has none of them.
"""

from .bundle import extract
from .load import load
from .pipeline import GraphPipeline

__all__ = ["GraphPipeline", "extract", "load"]
