"""The report's plots, one function each; every function returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np

KEPT, DROPPED, RELEVANCE, DIVERSITY = "#2b6cb0", "#e53e3e", "#dd6b20", "#38a169"


def _figure(width: float = 8, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def layer_importance(importance: list[float], dropped: list[int], free: list[int] = (), search: dict | None = None):
    """Bars per LLM layer on a log scale (importances span orders of magnitude, and the dropped
    layers are the smallest: on a linear axis their bars vanish), every layer labelled, the dropped
    ones red. `free` layers (layer drop's free_layers: dropping them changes nothing) are hatched and
    their tick labels starred: pi0's last VLM layer under kv pairing is dropped with importance 1.
    `search` ({order, deviation}, --layer-method actions): a second panel, the layers in the order the
    search dropped them and how far the calibration actions had moved after each."""
    fig = _figure(height=5.6 if search else 3.2)
    ax = fig.add_subplot(2, 1, 1) if search else fig.add_subplot()
    gone = set(dropped)
    colors = [DROPPED if i in gone else KEPT for i in range(len(importance))]
    positive = [v for v in importance if v > 0]
    floor = min(positive) / 10 if positive else 1e-6  # a log axis has no zero: an exact 0 sits on the floor
    bars = ax.bar(range(len(importance)), importance, color=colors, gid="importance", bottom=0)
    for i in free:
        bars[i].set_hatch("//")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    for i in dropped:  # a band behind each dropped layer, so it stands out even where bars are close
        ax.axvspan(i - 0.5, i + 0.5, color=DROPPED, alpha=0.12, lw=0, gid=f"dropped:{i}")
    note = f"\n{', '.join(map(str, free))}* free: its output feeds nothing" if free else ""
    chooser = ", chosen by the actions (below)" if search else ""
    ax.set(xlabel="LLM layer", ylabel="importance  1 - cos(h_in, h_out)  (log)")
    ax.set_title(f"Layer importance (Eq. 1): {len(dropped)} dropped (red){chooser}, {len(importance) - len(dropped)} "
                 f"kept (blue){note}", fontsize=9)
    ax.set_xticks(range(len(importance)), [f"{i}*" if i in free else str(i) for i in range(len(importance))],
                  fontsize=7)
    ax.set_xlim(-0.7, len(importance) - 0.3)
    if search:
        _search_panel(fig.add_subplot(2, 1, 2), search, free)
    return fig


def _search_panel(ax, search: dict, free) -> None:
    """The layer search (calibration/layer_search.py): removal k's bar is the actions' deviation with the
    first k layers of the order dropped."""
    order, deviation = search["order"], search["deviation"]
    ax.bar(range(len(order)), deviation, color=DROPPED, gid="search")
    ax.set_xticks(range(len(order)), [f"{i}*" if i in free else str(i) for i in order], fontsize=7)
    ax.set_xlim(-0.7, max(len(order), 4) - 0.3)
    ax.set(xlabel="layer, in the order the search dropped it", ylabel="actions deviation\n(mean sq., normalized)")
    ax.set_title("Layer search: how far the calibration actions had moved\nonce each layer, and every one left of it, "
                 "was dropped", fontsize=9)


def kept_tokens(image: np.ndarray, grid: int, kept: dict[str, list[int]], stands_for: dict | None = None):
    """The image with each kept patch outlined: relevance-chosen orange, diversity-chosen green; with
    proportional weighting, the number of visual tokens a kept one stands for written in it (when > 1)."""
    from matplotlib.patches import Rectangle

    fig = _figure(5, 5.7)
    ax = fig.add_subplot()
    ax.imshow(image)
    cell = image.shape[0] / grid
    colors = {"relevance": RELEVANCE, "diversity": DIVERSITY, "fastv": RELEVANCE, "random": DIVERSITY}
    counts = []
    for why, indices in kept.items():
        for i in indices:
            row, col = divmod(i, grid)
            ax.add_patch(Rectangle((col * cell, row * cell), cell, cell, fill=False, lw=1.6, ec=colors[why],
                                   label=why, gid=f"{why}:{i}"))
        counts.append(f"{len(indices)} by {why}")
    for i, n in (stands_for or {}).items():  # JSON turns the indices into strings
        row, col = divmod(int(i), grid)
        if n > 1:
            ax.text((col + 0.5) * cell, (row + 0.5) * cell, str(n), ha="center", va="center", fontsize=6,
                    color="white", bbox={"boxstyle": "round,pad=0.1", "fc": "black", "alpha": 0.55, "lw": 0})
    ax.set_axis_off()
    weighted = "\nnumber in a patch: the visual tokens it stands for" if stands_for else ""
    ax.set_title(f"Kept visual tokens: {', '.join(counts)} of {grid * grid}{weighted}", fontsize=10)
    handles = [Rectangle((0, 0), 1, 1, fill=False, ec=colors[why], lw=1.6) for why in kept]
    labels = {"relevance": "by relevance (incl. the K_key most relevant)", "diversity": "by diversity"}
    ax.legend(handles, [labels.get(why, why) for why in kept], loc="upper center", bbox_to_anchor=(0.5, -0.01),
              ncol=2, fontsize=8, frameon=False)
    return fig


def dit_similarity(similarity: dict, computing_steps: list[int], interval: int):
    """Per action-head block (DiT block, pi0 expert layer), cosine between consecutive steps of its
    attention / MLP outputs; recompute steps of the cache marked. Colour is the block's index on a
    colour scale with its bar, line style the branch: a legend entry per line covered the axes once
    pi0's 18 expert layers gave it 36, and the default colour cycle repeats after 10."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    fig = _figure()
    ax = fig.add_subplot()
    unit = similarity.get("unit", "block")
    n = len(similarity["attn"])
    scale = ScalarMappable(Normalize(0, max(n - 1, 1)), colormaps["viridis"])
    for j, (attn, mlp) in enumerate(zip(similarity["attn"], similarity["mlp"])):
        x = range(1, len(attn) + 1)
        ax.plot(x, attn, marker="o", ms=3, color=scale.to_rgba(j), gid=f"attn:{j}")
        ax.plot(x, mlp, marker="s", ms=3, ls="--", color=scale.to_rgba(j), gid=f"mlp:{j}")
    for s in computing_steps:
        ax.axvline(s, color="grey", lw=1, ls=":")
    steps = len(similarity["attn"][0]) if n else 0
    ax.set_xticks(range(1, steps + 1))
    ax.set_xlim(0.5, steps + 0.5)  # step 0 has nothing before it: its recompute line would only widen the axis
    ax.set(xlabel="denoising step s (compared with s-1)", ylabel="cosine",
           title=f"Action-head cross-step similarity; dotted: steps that recompute (cache interval {interval})")
    fig.colorbar(scale, ax=ax, label=unit, ticks=range(0, n, 1 if n <= 12 else 3))  # whole indices
    styles = [Line2D([], [], color="grey", marker="o", ms=3, label="attention"),
              Line2D([], [], color="grey", marker="s", ms=3, ls="--", label="MLP")]
    ax.legend(handles=styles, fontsize=7, loc="lower left")
    return fig


def reference_vs_compiled(costs: dict, latency: dict):
    """FLOPs per module and end-to-end latency, reference against compiled."""
    fig = _figure(9, 3.2)
    flops_ax, time_ax = fig.subplots(1, 2)
    modules = [c["module"] for c in costs["reference"]]
    x = np.arange(len(modules))
    flops_ax.bar(x - 0.2, [c["flops"] / 1e9 for c in costs["reference"]], 0.4, label="reference", color=DROPPED)
    flops_ax.bar(x + 0.2, [c["flops"] / 1e9 for c in costs["compressed"]], 0.4, label="compiled", color=KEPT)
    flops_ax.set(xticks=x, xticklabels=modules, ylabel="GFLOP per predict", title="FLOPs per module")
    flops_ax.legend()
    names = list(latency)
    time_ax.barh(names, [latency[n]["p50_ms"] for n in names],
                 color=[DROPPED if n.startswith("reference") else KEPT for n in names])
    time_ax.set(xlabel="ms (p50, image + instruction -> actions)", title="Latency, same run")
    return fig


def quant_sensitivity(quantization: dict):
    """Per quantized precision, each group quantized alone: its damage 1 - (lowest held-out actions
    cosine), on a log axis, against the recipe's error budget; the groups the recipe keeps float red."""
    fig = _figure(max(9, 6 * len(quantization)), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(quantization)))
    for ax, (precision, q) in zip(axes, quantization.items()):
        groups = {g: r for g, r in q["evidence"].get("groups", {}).items() if r.get("nodes")}
        names = list(groups)
        whole = [max(1 - groups[g]["min_cosine"], 1e-7) for g in names]
        # a refined group (quant/sensitivity.py) is drawn at what its quantized part costs, outlined at the whole's
        damage = [max(1 - groups[g]["partial"]["min_cosine"], 1e-7) if "partial" in groups[g] else w
                  for g, w in zip(names, whole)]
        ax.bar(range(len(names)), damage, color=[KEPT if g in q["recipe"]["quantize"] else DROPPED for g in names],
               gid=f"sensitivity:{precision}")
        refined = [i for i, g in enumerate(names) if "partial" in groups[g]]
        if refined:
            ax.bar(refined, [whole[i] for i in refined], fill=False, edgecolor=KEPT, ls="--", lw=1,
                   label="whole group (some GEMMs kept float)")
        if "budget" in q["evidence"]:
            ax.axhline(q["evidence"]["budget"], color="grey", ls="--", lw=1, label="error budget")
        recipe = q["evidence"].get("recipe")
        if recipe:
            ax.axhline(max(1 - recipe["min_cosine"], 1e-7), color=KEPT, ls=":", lw=1.2, label="recipe, measured")
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
        spent = (f"; budget {q['evidence']['budget']:.2g}, spent {q['evidence']['spent']:.2g}"
                 if "spent" in q["evidence"] else "")
        ax.set(ylabel="1 - lowest actions cosine")
        ax.set_title(f"{precision}: each group alone{spent} (red: kept float)", fontsize=9)
        ax.legend(fontsize=7)
    return fig


def filmstrip(episodes: list, columns: int = 8):
    """One row per episode: camera frames at evenly spaced re-plans up to the last frame, titled with
    the instruction and how the episode ended. episodes: [(EpisodeResult, [(step, image)])]."""
    fig = _figure(9, 1.35 * len(episodes) + 0.2)
    axes = fig.subplots(len(episodes), columns, squeeze=False)
    for row, (result, frames) in enumerate(episodes):
        picks = np.unique(np.linspace(0, len(frames) - 1, min(columns, len(frames))).round().astype(int))
        for col, ax in enumerate(axes[row]):
            ax.set_axis_off()
            if col < len(picks):
                step, image = frames[picks[col]]
                ax.imshow(image)
                ax.text(4, 20, f"{step}", color="white", fontsize=7, bbox={"facecolor": "black", "alpha": 0.5, "pad": 1})
        verdict = "success" if result.success else f"failed ({result.outcome})" if result.outcome else "failed"
        first = axes[row][0]
        title = first.text(0, 1.04, f"{result.instruction}: {verdict} after {result.steps} steps", fontsize=8,
                           color=KEPT if result.success else DROPPED, transform=first.transAxes, va="bottom")
        title.set_in_layout(False)  # it spans the row; laid out, it would widen the first column
    return fig
