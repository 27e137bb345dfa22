"""Static top-k visual token selection (EfficientVLA §3.3), and the FastV / random baselines.

Layers [0, K) see every token. Before layer K the selector keeps T of the N visual tokens (256 in
CogACT), which lie at [start, start + N) of the language stack's sequence (passes.family):
- relevance r_i: the head-averaged attention that the instruction tokens (queries after the visual
  span; padding excluded) pay to visual token i at layer K-1, summed over those queries, min-max
  normalized. Under a causal mask this is the only direction that exists;
- the K_key most relevant tokens, then floor(alpha * (T - K_key)) more by relevance: together the
  top (K_key + n_rel) by relevance;
- the rest by diversity: the candidates farthest (1 - max cosine similarity, on layer K-1's output)
  from every token already selected, chosen in one shot so the graph stays static.
Kept tokens stay in their original order and keep their original rotary positions. Every shape is
fixed by (T, K_key, alpha), so the op exports as TopK / Gather with no data-dependent shapes.
Padding in the visual span (pi0's absent camera slots; CogACT has none) ranks after every real token.

Proportional attention (`weighting`, ToMe's rule; not in the EfficientVLA paper): each of the N
visual tokens is assigned to the kept token most similar to it (cosine on layer K-1's output; a
kept token to itself), and in every later layer each kept token's attention logit gets + log(its
count). Softmax attention over m identical keys and values equals attention over one of them with
+ log m added, so the visual span keeps the share of attention it had with all N tokens. Without
it, dropping 200 near-alike table patches shifts every later query's attention onto the few kept
ones; on the trained cogact-tiny that costs most of T56's success (docs/BENCHMARKS.md). "auto" is
"proportional" where the family's stack applies a key bias (PassTarget.key_bias), else "none".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import UserError
from .family import target_of
from .record import PassRecord, check_range, count_params, fresh_copy

METHODS = ("efficientvla", "fastv", "random", "none")
WEIGHTINGS = ("auto", "proportional", "none")


@dataclass(frozen=True)
class TokenSelectConfig:
    tokens: int = 56  # --tokens: visual tokens kept (T)
    layer: int = 2  # K: selection happens before layer K, scored with layer K-1's attention
    k_key: int = 4
    alpha: float = 0.5
    method: str = "efficientvla"
    seed: int = 0  # random baseline only
    weighting: str = "auto"  # --token-weighting: "proportional" attention for the kept tokens, or "none"

    def split(self) -> tuple[int, int, int]:
        """(K_key, n_rel, n_div): unconditional, extra by relevance, by diversity."""
        n_rel = int(self.alpha * (self.tokens - self.k_key))
        return self.k_key, n_rel, self.tokens - self.k_key - n_rel


def check_select_layer(layer: int, n_layers: int) -> None:
    """Selection scores the attention of the layer before it, so it needs one before and one after."""
    check_range("--select-layer", layer, 1, n_layers - 1, "select after one of the model's layers")


def relevance(probs: torch.Tensor, valid: torch.Tensor, start: int, n_visual: int) -> torch.Tensor:
    """probs [B, H, S, S], valid [B, S], visual tokens at [start, start + n_visual) -> min-max
    normalized relevance [B, n_visual]."""
    end = start + n_visual
    attn = probs.mean(dim=1)[:, end:, start:end]  # instruction queries x visual keys
    r = (attn * valid[:, end:, None].to(attn.dtype)).sum(dim=1)  # padding queries count for nothing
    low, high = r.amin(dim=-1, keepdim=True), r.amax(dim=-1, keepdim=True)
    return (r - low) / (high - low).clamp_min(torch.finfo(r.dtype).tiny)


def efficientvla_groups(r: torch.Tensor, features: torch.Tensor, cfg: TokenSelectConfig,
                        present: torch.Tensor | None = None):
    """r [B, N], features [B, N, D] -> (by relevance [B, K_key + n_rel], by diversity [B, n_div]).
    `present` [B, N] bool: padding (pi0's absent cameras) ranks after every real token in both groups."""
    k_key, n_rel, n_div = cfg.split()
    if present is not None:
        r = r.masked_fill(~present, -1.0)  # relevance is in [0, 1]
    chosen = torch.topk(r, k_key + n_rel, dim=-1).indices  # [B, k_key + n_rel]
    if not n_div:
        return chosen, chosen[:, :0]
    selected = torch.zeros_like(r, dtype=torch.bool).scatter(1, chosen, torch.ones_like(chosen, dtype=torch.bool))
    f = torch.nn.functional.normalize(features.float(), dim=-1)
    sim = (f @ f.transpose(1, 2)).masked_fill(~selected[:, None, :], -2.0)  # only similarity to selected
    distance = (1 - sim.amax(dim=-1)).masked_fill(selected, -1.0)  # candidates only
    if present is not None:  # after real candidates, before a repeat of a selected token
        distance = distance.masked_fill(~present & ~selected, -0.5)
    return chosen, torch.topk(distance, n_div, dim=-1).indices


def efficientvla_indices(r: torch.Tensor, features: torch.Tensor, cfg: TokenSelectConfig) -> torch.Tensor:
    """r [B, N], features [B, N, D] -> kept visual indices [B, T], ascending."""
    return torch.cat(efficientvla_groups(r, features, cfg), dim=1).sort(dim=-1).values


def proportional_bias(features: torch.Tensor, kept: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """features [B, N, D] over the visual span, kept [B, T] indices into it -> [B, T] log of how many
    of the N tokens each kept token stands for (the most cosine-similar kept token takes each; a kept
    token takes itself). Padding (`present` False) counts for nothing."""
    f = torch.nn.functional.normalize(features.float(), dim=-1)
    chosen = torch.gather(f, 1, kept[..., None].expand(-1, -1, f.shape[-1]))
    owner = (f @ chosen.transpose(1, 2)).argmax(dim=-1)  # [B, N]
    # one-hot by comparison, not ScatterElements: Equal / ReduceSum build in every TensorRT version
    hits = owner[:, :, None] == torch.arange(kept.shape[1], device=kept.device)[None, None]  # [B, N, T]
    if present is not None:
        hits = hits & present[:, :, None]
    # float before the clamp: TensorRT's Clip takes no int64; a kept token tied with an earlier twin keeps 1
    return hits.float().sum(dim=1).clamp_min(1.0).log()


def _last_query_attention(probs: torch.Tensor, valid: torch.Tensor, start: int, n_visual: int) -> torch.Tensor:
    last = valid.long().sum(dim=1) - 1  # [B]
    rows = probs.mean(dim=1)[torch.arange(probs.shape[0], device=probs.device), last]  # [B, S]
    return rows[:, start:start + n_visual]


class TokenSelector(nn.Module):
    """Installed where the family says (PassTarget.install_selector); holds no weights (a random
    baseline holds its indices)."""

    def __init__(self, cfg: TokenSelectConfig, start: int, n_visual: int):
        super().__init__()
        self.cfg, self.layer, self.start, self.n_visual = cfg, cfg.layer, start, n_visual
        if cfg.method == "random":
            g = torch.Generator().manual_seed(cfg.seed)
            self.register_buffer("fixed", torch.randperm(n_visual, generator=g)[: cfg.tokens].sort().values,
                                 persistent=False)

    def groups(self, backbone, h_in, h_out, valid, mask, rope) -> dict[str, torch.Tensor]:
        """Kept visual indices by why they were kept: {"relevance", "diversity"} for EfficientVLA,
        {"fastv"} or {"random"} for the baselines. Unsorted."""
        if self.cfg.method == "random":
            return {"random": self.fixed.to(h_out.device).expand(h_out.shape[0], -1)}
        probs = backbone.attention_probs(self.layer - 1, h_in, mask, rope)
        present = valid[:, self.start:self.start + self.n_visual]  # False: padding, never worth a slot
        if self.cfg.method == "fastv":
            last = _last_query_attention(probs, valid, self.start, self.n_visual).masked_fill(~present, -1.0)
            return {"fastv": torch.topk(last, self.cfg.tokens, dim=-1).indices}
        visual = h_out[:, self.start:self.start + self.n_visual]
        r = relevance(probs, valid, self.start, self.n_visual)
        by_relevance, by_diversity = efficientvla_groups(r, visual, self.cfg, present)
        return {"relevance": by_relevance, "diversity": by_diversity}

    def indices(self, backbone, h_in, h_out, valid, mask, rope) -> torch.Tensor:
        groups = self.groups(backbone, h_in, h_out, valid, mask, rope)
        return torch.cat(list(groups.values()), dim=1).sort(dim=-1).values

    def forward(self, backbone, h_in, h_out, valid, positions, mask, rope):
        """Gather [tokens before the visual span, kept visual tokens, the rest] from h_out, valid
        and positions; with proportional weighting, also the key bias [B, S'] that later layers add
        to their attention logits (None without)."""
        visual = self.indices(backbone, h_in, h_out, valid, mask, rope)  # [B, T]
        keep = visual + self.start
        b, s = valid.shape
        tail = torch.arange(self.start + self.n_visual, s, device=keep.device).expand(b, -1)
        parts = [keep, tail]
        if self.start:  # pi0's visual span starts at 0: an empty arange folds to a wrong shape in ONNX
            parts.insert(0, torch.arange(self.start, device=keep.device).expand(b, -1))
        index = torch.cat(parts, dim=1)  # [B, S - N + T]
        h = torch.gather(h_out, 1, index[..., None].expand(-1, -1, h_out.shape[-1]))
        return h, torch.gather(valid, 1, index), torch.gather(positions, 1, index), self._key_bias(h_out, valid, visual)

    def log_counts(self, h_out, valid, visual) -> torch.Tensor | None:
        """[B, T] log of how many visual tokens each kept one (`visual`, ascending) stands for; None
        when the selection is unweighted."""
        if self.cfg.weighting != "proportional":
            return None
        span = slice(self.start, self.start + self.n_visual)
        return proportional_bias(h_out[:, span], visual, valid[:, span])

    def _key_bias(self, h_out, valid, visual) -> torch.Tensor | None:
        w = self.log_counts(h_out, valid, visual)  # [B, T], in kept order
        if w is None:
            return None
        b, s = valid.shape
        zeros = lambda n: w.new_zeros(b, n)  # noqa: E731
        return torch.cat([zeros(self.start), w, zeros(s - self.start - self.n_visual)], dim=1)


def resolve_weighting(asked: str, target) -> str:
    """The weighting the family can apply: "auto" resolves to proportional where its stack adds a key bias."""
    if asked not in WEIGHTINGS:
        raise UserError(f"--token-weighting {asked!r} is not one of {', '.join(WEIGHTINGS)}")
    able = getattr(target, "key_bias", False)
    if asked == "proportional" and not able:
        raise UserError(f"--token-weighting proportional: this model family's language stack takes no attention key "
                        "bias; use --token-weighting none")
    return ("proportional" if able else "none") if asked == "auto" else asked


def apply(model, cfg: TokenSelectConfig, calib=None):
    target = target_of(model)
    n_visual, n_layers = target.visual_tokens, len(target.layers())
    if cfg.method not in METHODS:
        raise UserError(f"--token-method {cfg.method!r} is not one of {', '.join(METHODS)}")
    cfg = replace(cfg, weighting=resolve_weighting(cfg.weighting, target))
    out = fresh_copy(model)
    if cfg.method != "none":
        check_range("--tokens", cfg.tokens, cfg.k_key, n_visual, f"keep between K_key={cfg.k_key} and {n_visual}")
        check_select_layer(cfg.layer, n_layers)
        target_of(out).install_selector(TokenSelector(cfg, target.visual_start, n_visual))
    kept = n_visual if cfg.method == "none" else cfg.tokens
    return out, PassRecord("token_select", cfg.__dict__.copy(), count_params(model), count_params(out),
                           {"visual_tokens": [n_visual, kept], "split": dict(zip(("key", "relevance", "diversity"),
                                                                                 cfg.split()))})

