"""A linear probe of CogACT's cognition feature: what it encodes about the objects the instruction
names, on scenes the model never saw. A training diagnostic that needs no closed-loop luck.

    python -m vlacompile.sim.probe [--model DIR] [FIT_EPISODES] [TEST_EPISODES]   # 100 and 60

DIR is a folder `vlacompile train` wrote (default: the embedded model).

A ridge regression from the cognition feature to the grounding targets (sim.demos.grounding: where
the named objects are from the gripper, the gripper's height, open, holding) is fitted on frames of
training-split episodes from FIT_SEED (past the seeds any shipped run read), and tested on held-out
evaluation episodes. It reports the MSE over the 9 targets, of the named object's position alone,
at the first frame of each episode (where the object must be found from afar) and later, and how
often the first frame's probed position lies nearest the named object rather than another one.

Why: a training run's grounding loss is measured on the scenes it trains on. When each scene gives
many frames, that loss can fall far below this probe's error on new scenes: the model has learnt
where things are in its training scenes, not how to find them (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

from .demos import POSITION_SCALE, Frame, episode_frames
from .env import Episode
from .evaluate import EvalConfig
from .tasks import episode_seeds

FIT_SEED = 30_000  # training seeds from here: past the ~4,500 a shipped run's action stage reads
RIDGE = 1e-2
BATCH = 32


def features(model, recipe, frames: list[Frame]) -> np.ndarray:
    """[N, D] cognition features of the frames (no gradient, batches of BATCH)."""
    import torch

    from ..models.cogact.objective import pixels_from_uint8

    out = []
    with torch.no_grad():
        for i in range(0, len(frames), BATCH):
            images, ids, valid = recipe.batch_inputs(frames[i:i + BATCH])
            out.append(model.cognition(pixels_from_uint8(images), ids, valid).float())
    return torch.cat(out).numpy()


def fit(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Ridge regression weights [D + 1, G] (the last row is the bias) of y [N, G] on x [N, D]."""
    xa = np.c_[x, np.ones(len(x))]
    return np.linalg.solve(xa.T @ xa + ridge * np.eye(xa.shape[1]), xa.T @ y)


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.c_[x, np.ones(len(x))] @ w


def nearest_is_named(probed: np.ndarray, family: str, seed: int) -> bool:
    """Whether the probed offset of the named object (x, y in grounding units) at an episode's
    first frame is nearer the named object than any other object of the scene."""
    ep = Episode(family, seed, render=False)
    g = ep.world.gripper
    gaps = [np.hypot(*(probed - POSITION_SCALE * np.array([o.v - g.v, o.u - g.u]))) for o in ep.world.objects]
    return int(np.argmin(gaps)) == ep.task.target


def probe_frames(fit_episodes: int, test_episodes: int, patches: bool = False):
    """(fitting frames: training-split episodes from FIT_SEED, every 2nd step; test frames: held-out
    episodes, every 3rd step, no DART noise or mistakes; [N_test] bool, each episode's first frame)."""
    rng = np.random.default_rng(0)
    train = [f for family, s in episode_seeds("train", fit_episodes, FIT_SEED)
             for f in episode_frames(family, s, rng, every=2, mistakes=0.0, patches=patches)]
    test, first = [], []
    for family, s in EvalConfig(episodes=test_episodes).episodes_list():
        frames = episode_frames(family, s, rng, every=3, noise=0.0, mistakes=0.0, patches=patches)
        first += [k == 0 for k in range(len(frames))]
        test += frames
    return train, test, np.array(first)


def probe(model, recipe, fit_episodes: int = 100, test_episodes: int = 60) -> dict:
    """Fit on probe_frames' fitting frames, test on its held-out ones; -> the errors and the
    first-frame binding count described above."""
    train, test, first = probe_frames(fit_episodes, test_episodes)
    w = fit(features(model, recipe, train), np.stack([f.grounding for f in train]))
    episodes = EvalConfig(episodes=test_episodes).episodes_list()
    probed, truth = predict(w, features(model, recipe, test)), np.stack([f.grounding for f in test])
    err = (probed - truth) ** 2
    named = sum(nearest_is_named(p[:2], family, s) for p, (family, s) in zip(probed[first], episodes))
    return {"fit_frames": len(train), "test_frames": len(test), "episodes": len(episodes),
            "mse": float(err.mean()), "named_position_mse": float(err[:, :3].mean()),
            "first_frame_position_mse": float(err[first, :3].mean()),
            "later_position_mse": float(err[~first, :3].mean()),
            "first_frame_nearest_named": int(named)}


def main(argv: list[str]) -> None:
    from .args import cogact_model, counts, model_option

    folder, argv = model_option(argv)
    fit_episodes, test_episodes = counts(argv, ("fit_episodes", "test_episodes"), (100, 60))
    EvalConfig(episodes=test_episodes).episodes_list()
    r = probe(*cogact_model(folder), fit_episodes, test_episodes)
    rms = np.sqrt(r["first_frame_position_mse"]) / POSITION_SCALE
    print(f"probe fitted on {r['fit_frames']} frames, tested on {r['test_frames']} frames of {r['episodes']} held-out "
          f"episodes: grounding MSE {r['mse']:.4f}, named object's position {r['named_position_mse']:.4f} "
          f"(first frame {r['first_frame_position_mse']:.4f}, RMS {rms:.3f} table units; later "
          f"{r['later_position_mse']:.4f}); at the first frame the probed position is nearest the named object in "
          f"{r['first_frame_nearest_named']} of {r['episodes']}")


if __name__ == "__main__":
    from .args import run

    run(main)
