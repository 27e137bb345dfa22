"""Open-loop agreement with the expert: a training diagnostic that needs no closed-loop luck.

The expert drives each held-out episode; at every `every`-th step the policy predicts a chunk from
the camera image, and its first `first` actions are compared with the expert's plan from that
state: the sign of each x, y, z delta (where the plan moves), and the gripper's open/closed state.
A policy that has learnt where to go agrees on most signs; chance is 50%.

    python -m vlacompile.sim.openloop [--model DIR] [EPISODES]     # 25 episodes

DIR is a folder `vlacompile train` wrote (default: the embedded model).
"""

from __future__ import annotations

import numpy as np

from .env import Episode
from .evaluate import EvalConfig, episode_noise
from .expert import expert_action, plan

MOVING = 1e-4  # a planned delta smaller than this has no sign to agree with


def agreement(policy, episodes: int = 25, every: int = 4, first: int = 4) -> dict:
    """`policy(image, instruction, noise, state=...) -> [chunk, 7]`, as evaluate's policies; one that defines
    `reset(episode)` is told each episode as it starts."""
    signs, grips = [], []
    for family, seed in EvalConfig(episodes=episodes).episodes_list():
        ep = Episode(family, seed)
        if hasattr(policy, "reset"):
            policy.reset(ep)
        while not ep.done:
            if ep.world.steps % every == 0:
                obs = ep.observe()
                label = plan(ep.world, ep.task, first)
                noise = episode_noise(0, seed, ep.world.steps, policy.noise_shape)
                pred = np.asarray(policy(obs.image, obs.instruction, noise, state=obs.state))[:first]
                moving = np.abs(label[:, :3]) > MOVING
                signs += list((np.sign(pred[:, :3]) == np.sign(label[:, :3]))[moving])
                grips += list((pred[:, 6] >= 0.5) == (label[:, 6] >= 0.5))
            ep.step(expert_action(ep.world, ep.task))
    return {"episodes": episodes, "sign_agreement": float(np.mean(signs)), "gripper_agreement": float(np.mean(grips)),
            "signs": len(signs), "predictions": len(grips) // first}


def main(argv: list[str]) -> None:
    from .args import cogact_policy, counts, model_option
    from .policies import TorchPolicy

    folder, argv = model_option(argv)
    (episodes,) = counts(argv, ("episodes",), (25,))
    EvalConfig(episodes=episodes).episodes_list()
    r = agreement(TorchPolicy(cogact_policy(folder)), episodes)
    print(f"{r['predictions']} predictions on {episodes} held-out episodes: sign of x, y, z right "
          f"{r['sign_agreement']:.1%} (of {r['signs']}), gripper state right {r['gripper_agreement']:.1%}")


if __name__ == "__main__":
    from .args import run

    run(main)
