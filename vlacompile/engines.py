"""`vlacompile engines`: one TensorRT engine per graph, with a record of where it is valid.

Runs on the target device (engines do not move between TensorRT versions or GPU architectures).
Each engine is written under a temporary name and renamed, then its record; a reader trusts an
engine only through a record whose hashes match it and its source graph.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UserError
from .fsutil import write_json
from .runtime import manifest as manifest_io
from .runtime import provenance

DEFAULT_DIR = Path("engines")


@dataclass(frozen=True)
class EngineConfig:
    precision: str = "fp16"  # which graphs: strongly typed, their types decide every layer's precision
    workspace_mb: int | None = None  # TensorRT's workspace pool limit; None: TensorRT's default
    opt_level: int | None = None  # builder optimization level 0-5; None: TensorRT's default (3)
    timing_cache: Path | None = None  # reused across builds; default <out>/timing.cache


def build_engines(graphs: Path, out: Path, cfg: EngineConfig, progress: bool = True) -> list[dict]:
    from tqdm import tqdm

    from .backends.tensorrt import build

    graphs, out = Path(graphs), Path(out)
    manifest = manifest_io.read(graphs)
    manifest_io.verify(graphs, manifest)
    if cfg.precision not in manifest["graphs"]:
        raise UserError(f"{graphs} has no {cfg.precision} graphs ({', '.join(manifest['graphs'])}); export them with "
                        f"--precision {cfg.precision}")
    device = provenance.current()
    cache = cfg.timing_cache or out / "timing.cache"
    records = []
    for name in tqdm(manifest["pipeline"], desc="engines", unit="engine", disable=not progress):
        graph = graphs / manifest["graphs"][cfg.precision][name]["file"]
        engine = out / provenance.engine_name(name, cfg.precision)
        build(graph, engine, cfg.workspace_mb, cfg.opt_level, cache)
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
        record = provenance.record(engine, graph, cfg.precision, device["tensorrt"],
                                   {"name": device["gpu"], "compute_capability": device["compute_capability"]}, options)
        write_json(engine.with_suffix(".json"), record)
        records.append(record)
    return records
