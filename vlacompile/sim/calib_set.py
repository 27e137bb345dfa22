"""The shipped calibration set, calib_data/: frames of expert episodes on the calibration seeds, so
calibration sees what the policy sees when it runs (the same camera, tasks and motions).

    python -m vlacompile.sim.calib_set [OUT_DIR]      # default: calib_data

The set keeps the calibration folder format (vlacompile.data.calib): manifest.jsonl + images/, each
line with the gripper's state at the frame (pi0 reads it; CogACT does not).
Episodes cover the task families in turn; each contributes FRAMES frames spread over its run. The
last 20% of episodes are the held-out split that fidelity is measured on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..fsutil import staged_folder, write_text
from ..workers import ordered, usable_cores
from .env import Episode
from .expert import expert_action
from .tasks import episode_seeds

EPISODES, FRAMES = 15, 4


def _frames(family: str, seed: int, count: int) -> tuple[str, list[tuple[int, object, list]]]:
    """(instruction, [(step, image, state)]) at `count` steps spread from the start to the last step."""
    ep, shots = Episode(family, seed), []
    length = _length(family, seed)
    wanted = set(np.linspace(0, length - 1, count).round().astype(int).tolist())
    while True:
        if ep.world.steps in wanted:
            obs = ep.observe()
            shots.append((ep.world.steps, obs.image, [round(float(x), 6) for x in obs.state]))
        if ep.done:
            return ep.task.instruction, shots
        ep.step(expert_action(ep.world, ep.task))


def _length(family: str, seed: int) -> int:
    ep = Episode(family, seed, render=False)
    while not ep.done:
        ep.step(expert_action(ep.world, ep.task))
    return ep.world.steps


def _frames_job(job: tuple) -> tuple[str, list]:
    return _frames(*job)


def benchmark_frames(episodes: int, first: int = EPISODES, frames: int = FRAMES, progress: bool = False,
                     workers: int | None = None) -> list:
    """Frames of the calibration seeds' episodes first .. first + episodes - 1 as calibration samples
    held in memory (the condition map's fit set): by default the episodes after calib_data's, so
    calib_data's held-out frames stay held out. `workers` processes render them (default: one per
    core; 0: this process; the frames do not depend on it)."""
    from tqdm import tqdm

    from ..data.calib import LoadedSample

    seeds = episode_seeds("calibration", episodes, first)
    workers = usable_cores() if workers is None else workers
    # fork: pipeline.rewrite calls this from a user's script too, which may lack the main guard that
    # forkserver needs; the workers only draw (numpy, PIL), so torch's inherited threads stay unused.
    shot = ordered(_frames_job, ((family, seed, frames) for family, seed in seeds), workers, "fork")
    out = []
    for k, (family, seed) in enumerate(tqdm(seeds, desc="benchmark frames", unit="episode", disable=not progress)):
        instruction, shots = next(shot)
        out += [LoadedSample(Path(f"benchmark/calibration/{family}-{seed}/step{step:02d}"), instruction, first + k,
                             step, tuple(state), image) for step, image, state in shots]
    return out


def write_calib_set(out_dir, episodes: int = EPISODES, frames: int = FRAMES) -> int:
    """Write the set to out_dir (replacing it as a whole, never half-written); return its size."""
    rows = []
    with staged_folder(Path(out_dir)) as tmp:
        (tmp / "images").mkdir()
        for k, (family, seed) in enumerate(episode_seeds("calibration", episodes)):
            instruction, shots = _frames(family, seed, frames)
            for step, image, state in shots:
                rel = f"images/ep{k:02d}_step{step:02d}.png"
                image.save(tmp / rel, optimize=True)
                rows.append({"image": rel, "instruction": instruction, "episode": k, "step": step, "state": state,
                             "task": {"family": family, "seed": seed}})
        write_text(tmp / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "calib_data"
    print(f"wrote {write_calib_set(target)} samples to {target}")
