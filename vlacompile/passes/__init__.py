"""Rewrite passes (the EfficientVLA method, field-notes §2).

Each pass is a frozen config plus one function `apply(model, config, calib) -> (new_model, record)`:
the input model is never modified, and the record says what changed. `compress` applies the
enabled ones in the order that makes sense (structure first, then the forward rewrites). The
condition map comes last and needs a fit set, not the calibration: pipeline.rewrite applies it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .cache import CacheConfig
from .condition_map import ConditionMapConfig
from .layer_drop import LayerDropConfig
from .mlp_prune import MlpPruneConfig
from .record import PassRecord
from .token_select import TokenSelectConfig


@dataclass(frozen=True)
class CompressConfig:
    layers: LayerDropConfig | None = None
    mlp: MlpPruneConfig | None = None
    tokens: TokenSelectConfig | None = None
    cache: CacheConfig | None = None
    condition: ConditionMapConfig | None = None

    def to_json(self) -> dict:
        return {k: (asdict(v) if v is not None else None) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, data: dict) -> "CompressConfig":
        kinds = {"layers": LayerDropConfig, "mlp": MlpPruneConfig, "tokens": TokenSelectConfig, "cache": CacheConfig,
                 "condition": ConditionMapConfig}
        return cls(**{k: None if data.get(k) is None else kind(**data[k]) for k, kind in kinds.items()})


def compress(model, config: CompressConfig, calib=None) -> tuple[object, list[PassRecord]]:
    """Apply every enabled pass but the condition map. `calib=None` is only for structure (costs on meta models):
    which layers and channels go then is arbitrary, but every count is what a calibrated run gives."""
    from . import cache, layer_drop, mlp_prune, token_select

    records = []
    for cfg, module in ((config.layers, layer_drop), (config.mlp, mlp_prune),
                        (config.tokens, token_select), (config.cache, cache)):
        if cfg is not None:
            model, record = module.apply(model, cfg, calib)
            records.append(record)
    return model, records


__all__ = ["CacheConfig", "CompressConfig", "ConditionMapConfig", "LayerDropConfig", "MlpPruneConfig", "PassRecord",
           "TokenSelectConfig", "compress"]
