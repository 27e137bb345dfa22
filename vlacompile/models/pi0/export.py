"""What the exporter, the validator and the runtime need to know about pi0 (its export declaration).

pi0 splits into three static, batch-1 graphs, tensor names global as for CogACT:
  vision: pixels [1, C, 3, 224, 224]                           -> image_tokens [1, C * 256, W]
  prefix: image_tokens, image_valid, input_ids, ids_valid       -> offset, valid_<g>, k_<i>, v_<i>
  expert: state, noise, offset, valid_<g>, k_<i>, v_<i>         -> actions [1, 50, 32]
The prefix graph is the VLM: it returns the K/V cache the expert reads, one k_<i> / v_<i> pair per
expert layer (keys after RoPE), with the static top-k token selection inside. Entries after the
selection are shorter; `valid_0` says which cached tokens are real before it, `valid_1` after it. The
expert graph is the whole flow loop unrolled (10 Euler steps, flow-step caching as the passes left
it), so its time embeddings are constants. Every shape is fixed by the rewritten model; graph inputs
and outputs are float32 (ids int64, masks bool) at every precision.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ...export.islands import swap_layer_norms
from ...export.spec import GraphSpec, TensorSpec
from ...runtime import noise as noise_io
from ...runtime import postprocess, preprocess
from .model import PrefixKV
from .targets import FlowLoop

FAMILY = "pi0"
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cache_layout(model) -> list[int]:
    """The validity group of each prefix cache entry, in expert-layer order: 0 before the token
    selection, 1 after it (the order in which Pi0.prefix_kv appends entries)."""
    layers, selector = model.vlm.layers, model.selector
    groups = []
    for i in range(len(layers) + 1):
        selected = int(selector is not None and i >= selector.layer)
        groups += [selected] * len(model.vlm.sources_before(i)) + ([selected] if i < len(layers) else [])
    return groups


def _group_lengths(model) -> list[int]:
    cfg, selector = model.cfg, model.selector
    full = cfg.image_tokens + cfg.prompt_len
    return [full] if selector is None else [full, full - cfg.image_tokens + selector.cfg.tokens]


class VisionGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.embed_images(pixels.to(self.model.projector.weight.dtype)).float()


class PrefixGraph(nn.Module):
    """The VLM over [image tokens; prompt] -> the K/V cache, as a flat tuple of graph outputs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images, image_valid, input_ids, ids_valid):
        m = self.model
        first = m.vlm.layers[0].input_layernorm.weight.dtype  # float32 where for_export keeps it so
        h, valid = m.join_prefix(images.to(first), image_valid, input_ids, ids_valid)
        cache = m.prefix_kv(h, valid)
        groups: list[torch.Tensor] = []
        for v in cache.valid:  # the cache holds one validity tensor per group, shared by its entries
            if not any(v is g for g in groups):
                groups.append(v)
        pairs = [t.float() for k, v in zip(cache.keys, cache.values) for t in (k, v)]
        return (cache.offset, *groups, *pairs)


class ExpertGraph(nn.Module):
    """The flow loop over the cache the prefix graph returned."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layout = cache_layout(model)

    def forward(self, state, noise, offset, *tensors):
        m, n_groups = self.model, max(self.layout) + 1
        groups, pairs = tensors[:n_groups], tensors[n_groups:]
        dtype = m.action_in_proj.weight.dtype
        keys = [k.to(dtype) for k in pairs[0::2]]
        values = [v.to(dtype) for v in pairs[1::2]]
        cache = PrefixKV(keys, values, [groups[g] for g in self.layout], offset)
        return m.sample(cache, state, noise).float()


def _cache_specs(model) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(offset and validity specs, k/v specs) of the prefix cache."""
    e = model.cfg.expert
    lengths = _group_lengths(model)
    head = [TensorSpec("offset", (1,), "int64"),
            *(TensorSpec(f"valid_{g}", (1, n), "bool") for g, n in enumerate(lengths))]
    kv = [TensorSpec(f"{kind}_{i}", (1, e.kv_heads, lengths[g], e.head_dim))
          for i, g in enumerate(cache_layout(model)) for kind in ("k", "v")]
    return head, kv


def graphs(model) -> list[GraphSpec]:
    """The graphs of the rewritten `model` (its layer count and kept tokens fix the cache's shapes)."""
    cfg = model.cfg
    image = (1, cfg.cameras, 3, cfg.siglip.image, cfg.siglip.image)
    tokens = TensorSpec("image_tokens", (1, cfg.image_tokens, cfg.vlm.width))
    head, kv = _cache_specs(model)
    chunk = (1, cfg.horizon, cfg.max_action_dim)
    return [
        GraphSpec("vision", VisionGraph, (TensorSpec("pixels", image),), (tokens,)),
        GraphSpec("prefix", PrefixGraph,
                  (tokens, TensorSpec("image_valid", (1, cfg.cameras), "bool"),
                   TensorSpec("input_ids", (1, cfg.prompt_len), "int64"),
                   TensorSpec("ids_valid", (1, cfg.prompt_len), "bool")),
                  (*head, *kv)),
        GraphSpec("expert", ExpertGraph,
                  (TensorSpec("state", (1, cfg.max_state_dim)), TensorSpec("noise", chunk), *head, *kv),
                  (TensorSpec("actions", chunk),)),
    ]


def for_export(model, precision: str):
    """A copy of the rewritten model as the graphs compute it. At fp16 / bf16 the weights are half;
    Gemma's RMSNorms, RoPE, every softmax, the time embedding and the Euler state already compute in
    float32; SigLIP's LayerNorms are swapped to float32 ones, and the flow times stay float32 (0.9 in
    float16 is 0.8999); the VLM layers before the token selection stay float32 (keep_selection_float)."""
    out = copy.deepcopy(model).eval()
    if precision in HALF:
        out.to(HALF[precision])
        swap_layer_norms(out)
        keep_selection_float(out, model)
        for m in out.modules():
            if isinstance(m, FlowLoop):
                m.times = m.times.float()
    return out


def keep_selection_float(half, model) -> None:
    """The VLM layers before the static top-k (and the K/V sources of dropped layers among them) of
    `half` replaced by float32 copies of `model`'s (not cast back: that would keep half's rounding), so
    that half precision does not reorder the tokens the top-k ranks. Where two tokens nearly tie
    it does: pi0-tiny p6's fp16 prefix graph kept other tokens than PyTorch on one calibration image
    and failed the parity gate of every K/V entry after the selection (docs/BENCHMARKS.md), and a cache
    position holding another token is another K/V vector. Two of the twelve kept layers by default; the
    int8 recipe keeps them float for the same reason (quant.selection_inputs)."""
    if model.selector is None:
        return
    for i in range(model.selector.layer):
        half.vlm.layers[i] = copy.deepcopy(model.vlm.layers[i]).eval()
        for j, source in enumerate(model.vlm.sources_before(i)):
            half.vlm.kv_sources[str(i)][j] = copy.deepcopy(source).eval()


def _encode(policy, sample) -> dict[str, torch.Tensor]:
    """The policy's inputs for one calibration sample: its image in the first camera slot, its state."""
    return policy.encode([sample.load_image()], sample.instruction, np.asarray(sample.state, dtype=np.float32))


def pipeline_inputs(policy, sample, noise: torch.Tensor) -> dict[str, torch.Tensor]:
    """The first graphs' inputs for one calibration sample, its image in the first camera slot."""
    encoded = _encode(policy, sample)
    return {"pixels": encoded["pixels"], "image_valid": encoded["image_valid"], "input_ids": encoded["ids"],
            "ids_valid": encoded["ids_valid"], "state": encoded["state"], "noise": noise}


def reference_tensors(policy, compressed, sample, noise: torch.Tensor) -> dict[str, np.ndarray]:
    """Every graph tensor for one calibration sample, computed by the PyTorch (rewritten) model in float32."""
    inputs = pipeline_inputs(policy, sample, noise)
    specs = graphs(compressed)
    named = dict(inputs)
    with torch.no_grad():
        named["image_tokens"] = compressed.embed_images(inputs["pixels"])
        cache = PrefixGraph(compressed)(named["image_tokens"], inputs["image_valid"], inputs["input_ids"],
                                        inputs["ids_valid"])
        named.update(zip([t.name for t in specs[1].outputs], cache))
        named["actions"] = ExpertGraph(compressed)(inputs["state"], noise, *cache)
    return {k: v.detach().numpy().copy() for k, v in named.items()}


def reference_actions(policy, compressed, sample, noise: torch.Tensor) -> np.ndarray:
    """Normalized, padded actions [1, 50, 32] of the PyTorch rewritten model (the pipeline parity's reference)."""
    encoded = _encode(policy, sample)
    with torch.no_grad():
        return compressed(**encoded, noise=noise).numpy()


FIDELITY_FEATURE = "state token"  # the expert's output there


def fidelity_outputs(policy, model, sample, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the expert's last hidden state at the state token [We], normalized actions [50, action dims]) of
    `model`. The state token reads the prefix and itself only, so it summarizes the observation as the
    expert sees it, whatever the noise (CogACT's cognition token plays that part)."""
    encoded = _encode(policy, sample)
    cache = model.prefix_kv(*model.embed_prefix(encoded["pixels"], encoded["image_valid"], encoded["ids"],
                                                encoded["ids_valid"]))
    t = torch.ones(noise.shape[0])
    feature = model.suffix_hidden(cache, encoded["state"], model.initial_noise(noise), t)[0, 0]
    return feature.float(), model.sample(cache, encoded["state"], noise)[0, :, : policy.statistics.action_dim]


def observation(sample) -> dict:
    """The runtime's predict arguments besides image and instruction: pi0 reads the robot state."""
    return {"state": np.asarray(sample.state, dtype=np.float32)}


def report_view(cfg) -> dict:
    """What the build report draws: the image size, one camera's token grid, the flow steps."""
    return {"image": cfg.siglip.image, "grid": cfg.siglip.image // cfg.siglip.patch, "steps": cfg.flow.steps}


BENCH_MODULES = {"vision": "vision", "prefix": "llm", "expert": "action_head"}  # graph -> costs.ModuleCost module


def module_calls(policy, sample, noise, device, dtype) -> dict:
    """Graph name (and "end_to_end") -> call of the uncompressed model on fixed inputs, for `bench`."""
    model = policy.model.to(device, dtype)

    def encoded():  # preprocessing is timed end to end, as on the compiled side
        inputs = {k: v.to(device) for k, v in _encode(policy, sample).items()}
        return {**inputs, "pixels": inputs["pixels"].to(dtype)}

    x, noise = encoded(), noise.to(device)
    tokens = model.embed_images(x["pixels"])
    prefix = (tokens, x["image_valid"], x["ids"], x["ids_valid"])
    cache = model.prefix_kv(*model.join_prefix(*prefix))
    return {"vision": lambda: model.embed_images(x["pixels"]),
            "prefix": lambda: model.prefix_kv(*model.join_prefix(*prefix)),
            "expert": lambda: model.sample(cache, x["state"], noise),
            "end_to_end": lambda: model(**encoded(), noise=noise)}


def statistics_json(policy) -> dict:
    """dataset_statistics.json: one dataset, state and action mean / std (LeRobot's MEAN_STD)."""
    s = policy.statistics
    return {policy.cfg.name: {"action": {"mean": s.action_mean.tolist(), "std": s.action_std.tolist()},
                              "state": {"mean": s.state_mean.tolist(), "std": s.state_std.tolist()}}}


def declarations(policy) -> dict:
    """The manifest entries a deployment needs besides the graphs (docs/CONTRACT.md, pi0)."""
    cfg, stats = policy.cfg, policy.statistics
    chunk = (1, cfg.horizon, cfg.max_action_dim)
    return {"pipeline": ["vision", "prefix", "expert"],
            "prompt": policy.tokenizer.declaration(cfg.prompt_len),
            "preprocess": preprocess.declaration(cfg.siglip.image, [{"mean": [0.5] * 3, "std": [0.5] * 3}],
                                                 resize="bilinear", fit="pad"),
            "cameras": {"input": "pixels", "valid_input": "image_valid", "slots": list(policy.cameras),
                        "absent": {"fill": -1.0, "valid": False}},
            "state": {"input": "state", "dims": stats.state_dim, "pad_to": cfg.max_state_dim,
                      "normalize": "mean_std", "eps": stats.eps, "statistics": "state",
                      "formula": "(s - mean) / (std + eps), then zeros to pad_to"},
            # The expert graph scales the noise itself (the sampling temperature): clients draw N(0, 1).
            "noise": {**noise_io.declaration(chunk), "scale_in_graph": cfg.flow.noise_scale},
            "actions": {"chunk": cfg.horizon, "dims": stats.action_dim},
            "postprocess": postprocess.mean_std_declaration(stats.action_dim)}


# The family's quantization declaration (groups and float islands) lives in quant.py.
from .quant import GROUPS, ISLANDS, group_of  # noqa: E402, F401
