"""vlacompile: a training-free compile pipeline for diffusion Vision-Language-Action policies.

Layout follows the pipeline: `models` (families, presets, checkpoints), `data` (calibration sets),
`costs` (params and FLOPs), and `cli`.
"""

__version__ = "0.1.0"
