"""`python -m vlacompile.sim`: the benchmark's own numbers: the scripted expert's success on held-out
episodes, and how fast the simulator steps with the camera rendering every frame.

    python -m vlacompile.sim [EPISODES]      # default 500
"""

from __future__ import annotations

import time

from .env import Episode
from .evaluate import result_of, summarize
from .expert import expert_action
from .tasks import FAMILIES, episode_seeds


def expert_success(episodes: int) -> dict:
    results = []
    for family, seed in episode_seeds("eval", episodes):
        ep = Episode(family, seed, render=False)
        while not ep.done:
            ep.step(expert_action(ep.world, ep.task))
        results.append(result_of(ep, 0))
    return summarize(results)


def steps_per_second(episodes: int = 25) -> float:
    """Env steps per second with a rendered 224 x 224 image after every step (expert actions)."""
    steps, start = 0, time.perf_counter()
    for family, seed in episode_seeds("eval", episodes):
        ep = Episode(family, seed)
        ep.observe()
        while not ep.done:
            ep.step(expert_action(ep.world, ep.task))
            ep.observe()
            steps += 1
    return steps / (time.perf_counter() - start)


def main(argv: list[str]) -> None:
    from .args import counts

    (n,) = counts(argv, ("episodes",), (500,))
    s = expert_success(n)
    o = s["overall"]
    print(f"expert: {o['successes']}/{o['episodes']} = {o['success_rate']:.1%} (95% CI {o['ci95'][0]:.1%}-"
          f"{o['ci95'][1]:.1%}), mean {o['mean_steps']:.1f} steps")
    for f in FAMILIES:
        b = s["families"].get(f)
        if b:
            print(f"  {f:<6} {b['success_rate']:.1%} of {b['episodes']}, mean {b['mean_steps']:.1f} steps")
    print(f"simulator: {steps_per_second():.0f} steps/s with a 224x224 frame rendered every step (1 process)")


if __name__ == "__main__":
    from .args import run

    run(main)
