"""CogACT's adaptive action ensemble, as its SimplerEnv policy runs it.

The policy predicts a chunk at every step and executes one action: the average of what the last
`horizon` predictions say for this step (the newest chunk's row 0, the one before's row 1, ...),
each weighted by exp(alpha x its cosine similarity to the newest), so a prediction that disagrees
with the newest counts less. CogACT's defaults: horizon 2 on the Google robot, alpha 0.1. The
gripper entry is averaged too and thresholded by the world (>= 0.5 opens), as the thresholded
0 / 1 commands CogACT averages are by its robot adapter.
"""

from __future__ import annotations

from collections import deque

import numpy as np

ALPHA = 0.1


class AdaptiveEnsemble:
    """Wraps a policy of evaluate's kind; the chunk it returns has the ensembled action as row 0.
    Needs one executed action per prediction (EvalConfig.execute 1), which evaluate checks."""

    def __init__(self, policy, horizon: int, alpha: float = ALPHA):
        self.policy, self.alpha = policy, alpha
        self.name, self.noise_shape = policy.name, policy.noise_shape
        self.history: deque = deque(maxlen=horizon)

    def reset(self, episode) -> None:
        self.history.clear()
        if hasattr(self.policy, "reset"):
            self.policy.reset(episode)

    def __call__(self, image, instruction: str, noise: np.ndarray, state=None) -> np.ndarray:
        chunk = np.asarray(self.policy(image, instruction, noise, state=state))
        self.history.append(chunk)
        n = len(self.history)
        preds = np.stack([c[n - 1 - i] for i, c in enumerate(self.history)])  # oldest first; the newest's row 0 last
        ref = preds[-1]
        cos = preds @ ref / (np.linalg.norm(preds, axis=1) * np.linalg.norm(ref) + 1e-7)
        weights = np.exp(self.alpha * cos)
        out = chunk.copy()
        out[0] = (weights / weights.sum()) @ preds
        return out
