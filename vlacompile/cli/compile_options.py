"""The compile flags (`--layers`, `--tokens`, ...) shared by info, calibrate, fidelity (and build)."""

from __future__ import annotations

import functools

import click

from ..passes import CacheConfig, CompressConfig, LayerDropConfig, MlpPruneConfig, TokenSelectConfig
from ..passes.layer_drop import METHODS as LAYER_METHODS, PAIRINGS
from ..passes.token_select import METHODS, WEIGHTINGS


def compile_options(fn):
    options = [
        click.option("--layers", type=int, default=None,
                     help="LLM layers kept (the least important by calibration go) [default: 22 of CogACT's 32, 12 of "
                          "pi0's 18]. The model's count: no drop."),
        click.option("--tokens", type=int, default=None,
                     help="Visual tokens kept, selected before --select-layer [default: 56 of CogACT's 256, 128 of "
                          "pi0's 256 per camera, across cameras]. The model's count: no selection."),
        click.option("--mlp-sparsity", type=float, default=0.25, show_default=True,
                     help="Fraction of MLP intermediate channels removed in every kept layer (pi0: the VLM's; "
                          "the expert's by --expert-mlp-sparsity). 0: none."),
        click.option("--expert-mlp-sparsity", type=float, default=None,
                     help="pi0 only: the fraction of the action expert's MLP channels removed [default: 0, the "
                          "expert's MLPs whole: pruning them cost pi0-tiny 13 points of success at no speed gain, "
                          "docs/BENCHMARKS.md]."),
        click.option("--cache-interval", type=int, default=5, show_default=True,
                     help="DiT blocks recompute attention and MLP every N denoising steps. 1: every step."),
        click.option("--token-method", type=click.Choice(METHODS), default="efficientvla", show_default=True,
                     help="Visual token selection: EfficientVLA, or the FastV / random / none baselines."),
        click.option("--token-weighting", type=click.Choice(WEIGHTINGS), default="auto", show_default=True,
                     help="What the dropped tokens leave behind: proportional attention (each kept token's logit "
                          "+ log of how many tokens it stands for), or none (the paper's plain drop). auto: "
                          "proportional where the family supports it (CogACT), else none (pi0)."),
        click.option("--select-layer", type=int, default=2, show_default=True,
                     help="Tokens are selected before this LLM layer, scored by the attention of the one before."),
        click.option("--layer-method", type=click.Choice(LAYER_METHODS), default=None,
                     help="Which layers go: the least important by calibration (importance: EfficientVLA's Eq. 1, "
                          "CogACT's default), the ones whose removal moves the calibration actions least (actions: "
                          "a greedy search stored with the calibration, n + (n-1) + ... runs of the model over 16 "
                          "samples; pi0's default, measured in docs/BENCHMARKS.md), or the random / last-n baselines."),
        click.option("--expert-pairing", type=click.Choice(PAIRINGS), default=None,
                     help="pi0 only: a dropped VLM layer leaves its K/V projections so the whole expert stays (kv, "
                          "pi0's default: measured in docs/BENCHMARKS.md), or takes the expert layer that reads its "
                          "K/V with it (drop). CogACT: drop."),
        click.option("--baseline-seed", "select_seed", type=int, default=0, show_default=True,
                     help="Seed of the random baselines (--layer-method random, --token-method random)."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), condition_options(fn))


def condition_options(fn):
    """--condition-map and its data (compile_options, and bench's own flags)."""
    options = [
        click.option("--condition-map/--no-condition-map", default=None,
                     help="Fit an affine map from the compressed model's cognition feature to the reference's, after "
                          "the other passes, and put it in the llm graph [default: on for CogACT, whose action head "
                          "reads that one vector; pi0 has none]. cogact-tiny's graphs: 55% -> 68-69% closed-loop "
                          "success at fp32, 50% -> 68-73% at fp16 (docs/BENCHMARKS.md)."),
        click.option("--condition-map-data", default="auto", show_default=True,
                     help="Frames the map is fitted on: benchmark (episodes of the closed-loop benchmark's calibration "
                          "seeds, after calib_data's), or a calibration folder (its last 20% of episodes choose the "
                          "ridge). auto: benchmark for a model trained on the benchmark, else --calib-data."),
        click.option("--condition-map-episodes", type=int, default=200, show_default=True,
                     help="Benchmark episodes (4 frames each) the map is fitted on and chosen with. 400 fits "
                          "cogact-tiny's map on twice the frames, 15 s more: the same success on 400 held-out "
                          "episodes (docs/BENCHMARKS.md)."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), fn)


DEFAULT_KEEP = {"cogact": (22, 56), "pi0": (12, 128)}  # (--layers, --tokens) when not given


DEFAULT_PAIRING = {"cogact": "drop", "pi0": "kv"}  # pi0-tiny: kv 9%, drop 4%, reference 10% (BENCHMARKS)


# --layer-method when not given, from closed loop on 100 held-out episodes (BENCHMARKS "Choosing the
# layers by the actions"). pi0-tiny p9, every pass at its default: actions 50%, importance 36%, reference
# 51% (17 episodes won, 3 lost). cogact-tiny c16: layer drop alone gains (73% against 55%), every pass
# together loses (51% against 63%; 13 / 25, p = 0.07), so CogACT keeps the paper's Eq. 1.
DEFAULT_LAYER_METHOD = {"cogact": "importance", "pi0": "actions"}


# --expert-mlp-sparsity when not given. pi0: the expert's MLPs stay whole. On pi0-tiny p7 (100 held-out
# episodes, BENCHMARKS "p7 ... through the compile") every pass at its default with the expert pruned
# like the VLM succeeded on 21% against the reference's 45%, with the expert whole on 34%, at the same
# speed (3.86x against 3.81x eager). EfficientVLA prunes the language model's MLPs, not the action head's.
DEFAULT_EXPERT_MLP = {"cogact": None, "pi0": 0.0}


# --condition-map when not given: on where the action head reads one conditioning vector.
DEFAULT_CONDITION_MAP = {"cogact": True, "pi0": False}


def condition_config(cfg, condition_map=None, condition_map_data="auto", condition_map_episodes=200):
    """The condition map's config from its flags, or None (off); refuses what no data can fix."""
    from ..models import family
    from ..passes.condition_map import NO_CONDITION, ConditionMapConfig, check_data, check_episodes

    on = DEFAULT_CONDITION_MAP[family(cfg)] if condition_map is None else condition_map
    if on and not DEFAULT_CONDITION_MAP[family(cfg)]:
        from ..errors import UserError

        raise UserError(NO_CONDITION.format(model=cfg.name))
    check_episodes(condition_map_episodes)
    if on:
        check_data(condition_map_data)
    return ConditionMapConfig(condition_map_data, condition_map_episodes) if on else None


def config_for(cfg, layers=None, tokens=None, expert_pairing=None, expert_mlp_sparsity=None, layer_method=None,
               condition_map=None, condition_map_data="auto", condition_map_episodes=200, **flags) -> CompressConfig:
    """The compile flags for a model configuration of either family, its defaults filled in."""
    from ..models import compile_counts, family

    keep_layers, keep_tokens = DEFAULT_KEEP[family(cfg)]
    if DEFAULT_EXPERT_MLP[family(cfg)] is None and expert_mlp_sparsity is not None:
        from ..errors import UserError
        from ..passes.mlp_prune import NO_HEAD_MLPS

        raise UserError(NO_HEAD_MLPS)  # here, before a build spends minutes calibrating
    expert_mlp = DEFAULT_EXPERT_MLP[family(cfg)] if expert_mlp_sparsity is None else expert_mlp_sparsity
    return compress_config(*compile_counts(cfg), keep_layers if layers is None else layers,
                           keep_tokens if tokens is None else tokens,
                           expert_pairing=expert_pairing or DEFAULT_PAIRING[family(cfg)],
                           layer_method=layer_method or DEFAULT_LAYER_METHOD[family(cfg)],
                           expert_mlp_sparsity=expert_mlp,
                           condition=condition_config(cfg, condition_map, condition_map_data, condition_map_episodes),
                           **flags)


def compress_config(n_layers: int, n_visual: int, layers, tokens, mlp_sparsity, cache_interval, token_method,
                    select_layer, select_seed=0, layer_method="importance", expert_pairing="drop",
                    token_weighting="auto", expert_mlp_sparsity=None, condition=None) -> CompressConfig:
    """Flags -> passes; a flag at its 'off' value switches its pass off (range errors still apply). The
    condition map runs only after a pass that moves the conditioning vector (layers, MLP, tokens)."""
    from ..passes.record import check_range
    from ..passes.token_select import check_select_layer

    check_range("--layers", layers, 1, n_layers, f"keep between 1 and the model's {n_layers} layers")
    check_range("--tokens", tokens, 4, n_visual, f"keep between K_key=4 and {n_visual}")
    check_range("--mlp-sparsity", mlp_sparsity, 0.0, 1.0, "give a fraction such as 0.25", high_open=True)
    if expert_mlp_sparsity is not None:
        check_range("--expert-mlp-sparsity", expert_mlp_sparsity, 0.0, 1.0, "give a fraction such as 0.25",
                    high_open=True)
    check_select_layer(select_layer, n_layers)
    if cache_interval < 1:
        check_range("--cache-interval", cache_interval, 1, 10, "recompute at least every step (1)")
    select = token_method != "none" and tokens < n_visual
    passes = dict(
        layers=LayerDropConfig(layers, layer_method, select_seed, expert_pairing) if layers < n_layers else None,
        mlp=MlpPruneConfig(mlp_sparsity, expert_mlp_sparsity) if mlp_sparsity > 0 or expert_mlp_sparsity else None,
        tokens=TokenSelectConfig(tokens, select_layer, method=token_method, seed=select_seed,
                                 weighting=token_weighting) if select else None,
        cache=CacheConfig(cache_interval) if cache_interval > 1 else None)
    moved = any(passes[k] is not None for k in ("layers", "mlp", "tokens"))
    return CompressConfig(**passes, condition=condition if moved else None)
