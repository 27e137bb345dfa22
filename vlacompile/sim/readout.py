"""Where a trained CogACT loses the named object: perception, attention, or readout. A training
diagnostic on scenes the model never saw, finer than the cognition probe (probe.py).

    python -m vlacompile.sim.readout [--model DIR] [FIT_EPISODES] [TEST_EPISODES]   # 100 and 60

DIR is a folder `vlacompile train` wrote (default: the embedded model). Frames are the probe's:
ridge regressions fitted on training-split episodes from probe.FIT_SEED, tested on held-out
evaluation episodes, scored at each episode's first frame, where the object must be found from
afar. Positions are absolute (table u and v, in grounding units), so the gripper's place and the
named object's are asked separately. Three questions, in the order the information flows:

1. Perception: do the visual tokens of object patches say where the object is (a ridge from each
   token to the centre of what its patch shows)?
2. Attention: at LLM layer i, how much of the cognition token's attention does the head that is
   most on the named object (on average over the fitting frames) give the named object, the other
   named object, and objects nobody named (split by whether they share its colour or its kind, which
   says which word a head that misses it reads); and do the visual tokens, pooled with that head's
   weights, say where the named object is? One head for all frames, as a value projection reads
   it: a head chosen per frame would credit the model with pointing that no later layer can use.
3. Readout: does the cognition token's hidden state after layer i say where the gripper is, and
   where the named object is?

Why: the cognition probe found the named object's place known no better than its mean; this says
which of the three steps drops it (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

from .demos import POSITION_SCALE, Frame
from .evaluate import EvalConfig
from .probe import BATCH, fit, predict, probe_frames

LAYERS = (1, 4, 7, 15, 23, 31)


def pointing_head(probs: np.ndarray, targets: np.ndarray) -> int:
    """probs [N, H, 256] (one layer), targets [N, 256] bool -> the head with the largest mean share on
    the target."""
    return int((probs * targets[:, None]).sum(-1).mean(0).argmax())


def shares(p: np.ndarray, target: np.ndarray, named: np.ndarray, labels: np.ndarray) -> tuple[float, ...]:
    """One head's attention on the visual tokens p [256], the target's and the named objects' masks
    [256] bool and the patch labels [256, 5] (patches.patch_labels) -> its shares of the target, the
    other named object, and the objects nobody named split three ways: those of the target's colour
    (any kind), those of its kind in another colour, and the rest. The split says which word a head
    that misses the target reads: attention on the target's colour-mates matches the colour alone."""
    objects = labels[:, 0] > 0
    unnamed = objects & ~named
    kind, colour = labels[target][0, :2] if target.any() else (-1, -1)
    same_colour = unnamed & (labels[:, 1] == colour)
    same_kind = unnamed & ~same_colour & (labels[:, 0] == kind)
    rest = unnamed & ~same_colour & ~same_kind
    return tuple(float(p[m].sum()) for m in (target, named & ~target, same_colour, same_kind, rest))


def trace(model, recipe, frames: list[Frame], layers: tuple[int, ...]) -> dict:
    """The cognition token's hidden state after each of `layers` [N, L, D], its attention on the
    visual tokens at them [N, L, H, 256], and the visual tokens [N, 256, D]."""
    import torch

    from ..models.cogact.objective import LayerInputs, pixels_from_uint8

    llm, top = model.llm_backbone, len(model.llm_backbone.layers) - 1
    after = [i + 1 for i in layers if i < top]  # the input of the next layer is this one's output
    states, probs, visual = [], [], []
    with torch.no_grad():
        for k in range(0, len(frames), BATCH):
            images, ids, valid = recipe.batch_inputs(frames[k:k + BATCH])
            v = model.visual_tokens(pixels_from_uint8(images))
            with LayerInputs(llm, tuple(sorted({*layers, *after}))) as inputs:
                cognition = model.cognition_from_visual(v, ids, valid)
            last = valid.long().sum(1) + v.shape[1] - 1
            rows = torch.arange(len(last))
            states.append(torch.stack([inputs[i + 1][0][rows, last] if i < top else cognition for i in layers], 1))
            rows_of = lambda p: p[rows, :, last, 1:1 + v.shape[1]]  # noqa: E731 (the cognition token's row)
            probs.append(torch.stack([rows_of(llm.attention_probs(i, inputs[i][0], inputs[i][1]["attention_mask"],
                                                                  inputs[i][1]["position_embeddings"]))
                                      for i in layers], 1))
            visual.append(v)
    return {k: torch.cat(x).float().numpy() for k, x in (("states", states), ("probs", probs), ("visual", visual))}


def _mse(x_fit, y_fit, x_test, y_test) -> float:
    return float(((predict(fit(x_fit, y_fit), x_test) - y_test) ** 2).mean())


def perception(fit_trace: dict, fit_frames, test_trace: dict, test_frames) -> tuple[float, float]:
    """(MSE, variance) of the object patches' centres (u, v) probed from their visual tokens."""
    def rows(t, frames):
        labels = np.stack([f.patches for f in frames])
        shows = labels[..., 0] > 0
        return t["visual"][shows], labels[shows][:, 2:4]

    x_fit, y_fit = rows(fit_trace, fit_frames)
    pick = np.random.default_rng(1).permutation(len(x_fit))[:20_000]  # enough for a 64-wide ridge
    x_test, y_test = rows(test_trace, test_frames)
    return _mse(x_fit[pick], y_fit[pick], x_test, y_test), float(y_test.var(0).mean())


def _pooled(t: dict, frames, j: int, head: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame at layer index j: the visual tokens pooled with `head`'s weights, and its shares
    (see shares)."""
    pooled, share = [], []
    for n, f in enumerate(frames):
        w = t["probs"][n, j, head]
        pooled.append(w @ t["visual"][n] / max(w.sum(), 1e-9))
        share.append(shares(w, f.named == 1, f.named > 0, f.patches))
    return np.stack(pooled), np.array(share)


def report(model, recipe, fit_episodes: int = 100, test_episodes: int = 60, layers: tuple[int, ...] = LAYERS) -> dict:
    fit_frames, test_frames, first = probe_frames(fit_episodes, test_episodes, patches=True)
    a, b = trace(model, recipe, fit_frames, layers), trace(model, recipe, test_frames, layers)
    named_at = lambda frames: np.stack([f.grounding[:2] + POSITION_SCALE * f.state[:2] for f in frames])  # noqa: E731
    gripper_at = lambda frames: POSITION_SCALE * np.stack([f.state[:2] for f in frames])  # noqa: E731
    first_frames = [f for f, k in zip(test_frames, first) if k]
    out = {"fit_frames": len(fit_frames), "test_frames": len(test_frames), "episodes": int(first.sum()),
           "named_variance": float(named_at(first_frames).var(0).mean()),
           "gripper_variance": float(gripper_at(first_frames).var(0).mean()), "layers": {}}
    out["visual_centre_mse"], out["visual_centre_variance"] = perception(a, fit_frames, b, test_frames)
    targets = np.stack([f.named == 1 for f in fit_frames])  # named_patches' role 1: the target
    for j, i in enumerate(layers):
        head = pointing_head(a["probs"][:, j], targets)
        pooled_fit, _ = _pooled(a, fit_frames, j, head)
        pooled_test, share = _pooled(b, test_frames, j, head)
        state_fit, state_test = a["states"][:, j], b["states"][first, j]
        out["layers"][i] = {
            "head": head, "target_share": float(share[first, 0].mean()),
            "other_named_share": float(share[first, 1].mean()), "unnamed_share": float(share[first, 2:].sum(1).mean()),
            "unnamed_split": [float(v) for v in share[first, 2:].mean(0)],  # same colour, same kind, neither
            "pooled_named_mse": _mse(pooled_fit, named_at(fit_frames), pooled_test[first], named_at(first_frames)),
            "gripper_mse": _mse(state_fit, gripper_at(fit_frames), state_test, gripper_at(first_frames)),
            "named_mse": _mse(state_fit, named_at(fit_frames), state_test, named_at(first_frames))}
    return out


def table(r: dict) -> str:
    lines = [f"readout on {r['test_frames']} frames of {r['episodes']} held-out episodes (probes fitted on "
             f"{r['fit_frames']}), first frames, MSE in grounding units:",
             f"perception: object patches' centres from their visual tokens {r['visual_centre_mse']:.4f} "
             f"(variance {r['visual_centre_variance']:.4f})",
             f"variance of the named object's place {r['named_variance']:.3f}, "
             f"of the gripper's {r['gripper_variance']:.3f}",
             "| layer | its head most on the named object: share on it / other named / unnamed objects (of its "
             "colour, of its kind, neither) | visual tokens "
             "pooled by that head: named object | hidden state after the layer: gripper | named object |",
             "|---|---|---|---|---|"]
    for i, x in r["layers"].items():
        lines.append(f"| {i} | head {x['head']}: {x['target_share']:.2f} / {x['other_named_share']:.2f} / "
                     f"{x['unnamed_share']:.2f} ({', '.join(f'{v:.2f}' for v in x['unnamed_split'])}) | {x['pooled_named_mse']:.3f} | {x['gripper_mse']:.3f} | {x['named_mse']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from .args import cogact_model, counts, model_option

    folder, argv = model_option(argv)
    fit_episodes, test_episodes = counts(argv, ("fit_episodes", "test_episodes"), (100, 60))
    EvalConfig(episodes=test_episodes).episodes_list()
    model, recipe = cogact_model(folder)
    print(table(report(model, recipe, fit_episodes, test_episodes)))


if __name__ == "__main__":
    from .args import run

    run(main)
