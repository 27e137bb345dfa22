"""Statistics gathered while the reference model runs over calibration samples (forward hooks).

- layer importance I_l = 1 - mean cos(h_in, h_out) over every sample and real token position;
- MLP channel score s_j = mean_tokens |silu(gate_j) * up_j| * ||W_down[:, j]||_2, for the language
  stack and for the action head's gated MLPs (PassTarget.head_mlps: pi0's expert, over every flow step);
- visual-token relevance at the selection layer (the same scores the selector computes);
- per action-sampler block (DiT block), cos(output at step s, output at step s-1) of its attention
  and MLP branches.
Samples run one at a time, unpadded, so every position is real. The model is reached only through
its PassTarget (passes.family), so any family that declares one calibrates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..passes.family import target_of
from ..passes.token_select import relevance


class Collector:
    def __init__(self, model, select_layer: int):
        self.model, self.select_layer, self.target = model, select_layer, target_of(model)
        layers = self.target.layers()
        n, width = len(layers), layers[0].mlp.down_proj.in_features
        self.cos_sum, self.cos_count = torch.zeros(n, dtype=torch.float64), 0
        self.act_sum, self.act_count = torch.zeros(n, width, dtype=torch.float64), 0
        heads = self.target.head_mlps()
        head_width = heads[0].down_proj.in_features if heads else 0
        self.head_sum, self.head_count = torch.zeros(len(heads), head_width, dtype=torch.float64), 0
        self.relevance: list[torch.Tensor] = []
        depth = len(self.target.branch_modules())
        self.branch_out = {kind: [[] for _ in range(depth)] for kind in ("attn", "mlp")}
        self.similarity = {kind: [] for kind in ("attn", "mlp")}
        self.handles = []

    def __enter__(self):
        for i, layer in enumerate(self.target.layers()):
            self.handles.append(layer.register_forward_hook(self._layer_hook(i), with_kwargs=True))
            self.handles.append(layer.mlp.down_proj.register_forward_pre_hook(self._mlp_hook(i)))
        for j, mlp in enumerate(self.target.head_mlps()):
            self.handles.append(mlp.down_proj.register_forward_pre_hook(self._head_hook(j)))
        for j, modules in enumerate(self.target.branch_modules()):
            for kind, module in zip(("attn", "mlp"), modules):
                hook = lambda m, a, out, j=j, kind=kind: self.branch_out[kind][j].append(out.detach().float())  # noqa: E731
                self.handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()

    def _layer_hook(self, i):
        def hook(module, args, kwargs, out):
            h_in = args[0]
            cos = F.cosine_similarity(h_in.double(), out.double(), dim=-1)  # [B, S]
            self.cos_sum[i] += cos.sum()
            if i == 0:
                self.cos_count += cos.numel()
            if i == self.select_layer - 1:
                probs = self.target.attention_probs_of_call(i, args, kwargs)
                valid = torch.ones(h_in.shape[:2], dtype=torch.bool)
                t = self.target
                self.relevance.append(relevance(probs, valid, t.visual_start, t.visual_tokens)[0].float())
        return hook

    def _mlp_hook(self, i):
        def hook(module, args):
            x = args[0].detach().double().abs().flatten(0, 1)  # [tokens, I]
            self.act_sum[i] += x.sum(dim=0)
            if i == 0:
                self.act_count += x.shape[0]
        return hook

    def _head_hook(self, j):
        def hook(module, args):
            x = args[0].detach().double().abs().flatten(0, 1)  # [tokens, I], one flow step
            self.head_sum[j] += x.sum(dim=0)
            if j == 0:
                self.head_count += x.shape[0]
        return hook

    def end_sample(self):
        """Turn this sample's per-step DiT branch outputs into step-to-step cosines."""
        for kind, per_block in self.branch_out.items():
            sims = [[F.cosine_similarity(o[s].flatten(), o[s - 1].flatten(), dim=0).item()
                     for s in range(1, len(o))] for o in per_block]
            self.similarity[kind].append(sims)
            for o in per_block:
                o.clear()

    def results(self) -> dict:
        downs = [layer.mlp.down_proj.weight.detach().double() for layer in self.target.layers()]
        norms = torch.stack([w.norm(dim=0) for w in downs])
        sim = {k: torch.tensor(v).mean(dim=0) for k, v in self.similarity.items()}  # [depth, steps - 1]
        heads = [mlp.down_proj.weight.detach().double().norm(dim=0) for mlp in self.target.head_mlps()]
        head_scores = self.head_sum / max(self.head_count, 1) * torch.stack(heads) if heads else self.head_sum
        return {
            "layer_importance": (1 - self.cos_sum / self.cos_count).tolist(),
            "mlp_scores": (self.act_sum / self.act_count * norms).float(),
            "head_mlp_scores": head_scores.float(),  # [head MLPs, their width]; [0, 0] without any
            "token_relevance": torch.stack(self.relevance),
            "dit_similarity": {k: v.tolist() for k, v in sim.items()},
        }
