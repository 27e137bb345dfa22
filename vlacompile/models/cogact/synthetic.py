"""Deterministic synthetic weights for the embedded default (no weights can be downloaded).

Every tensor is drawn from one seeded generator in state-dict order, so the same seed gives the
same model on any machine running this torch. Two choices keep later tests meaningful:
- no zero output layer: the released code zero-initializes the DiT's final linear, and a head that
  predicts zeros would make every parity and caching test pass vacuously;
- a denoiser-like action head: the final linear partly reads back the action embedding, so the
  predicted eps tracks the noisy input as a trained eps-predictor does at high noise. With i.i.d.
  weights DDIM inflates the chunk to about +-10 and every action clips; with this it stays inside
  [-1, 1] and still depends strongly on the cognition feature;
- per-layer residual gains for the LLM, log-uniform over [0.02, 1]: trained LLMs have layers that
  barely change the residual stream (the premise of layer dropping), and i.i.d. random layers do not.
"""

from __future__ import annotations

import math

import torch

LAYER_GAIN_RANGE = (0.02, 1.0)
ACTION_EMBED_GAIN, READBACK_GAIN, FINAL_RANDOM_GAIN = 4.0, 2.0, 0.3
X_EMBED, FINAL = "action_model.net.x_embedder.linear.weight", "action_model.net.final_layer.linear.weight"


def _draw(name: str, shape: torch.Size, g: torch.Generator) -> torch.Tensor:
    def normal(std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, generator=g) * std + mean

    leaf = name.rsplit(".", 1)[-1]
    if "norm" in name or leaf == "gamma":  # LayerNorm / RMSNorm weights and biases, layer scale
        if leaf == "bias":
            return normal(0.02)
        return normal(0.05, mean=0.3 if leaf == "gamma" else 1.0)
    if leaf == "bias":
        return normal(0.02)
    if leaf == "weight" and len(shape) >= 2 and "embed_tokens" not in name:
        fan_in = math.prod(shape[1:])
        return normal(1.0 / math.sqrt(fan_in))
    return normal(1.0 if ("embed_tokens" in name or "uncondition" in name) else 0.2)


def synthesize_state(shapes: dict[str, torch.Size], seed: int, llm_layers: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gains = torch.exp(
        torch.empty(llm_layers).uniform_(math.log(LAYER_GAIN_RANGE[0]), math.log(LAYER_GAIN_RANGE[1]), generator=g)
    )
    state = {}
    for name, shape in shapes.items():
        t = _draw(name, shape, g)
        if name.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
            t = t * gains[int(name.split(".layers.")[1].split(".")[0])]
        state[name] = t
    if X_EMBED in state:
        _denoiser_like(state)
    return state


def _denoiser_like(state: dict[str, torch.Tensor]) -> None:
    w_x = state[X_EMBED] * ACTION_EMBED_GAIN  # [W, 7]
    width, action_dim = w_x.shape
    readback = w_x.T * (action_dim * math.sqrt(width) / w_x.norm() ** 2)  # [7, W], ~ LN^-1 then W_x^+
    state[X_EMBED] = w_x
    state[FINAL] = READBACK_GAIN * readback + FINAL_RANDOM_GAIN * state[FINAL]
