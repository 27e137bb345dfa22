"""`vlacompile bench`: latency per module and end to end, reference against compiled, in one run.

The reference is the uncompressed PyTorch model in eager mode; the compiled pipeline is the
rewritten model on the chosen backend (ONNX Runtime or TensorRT over exported graphs, or the
`torch` backend). Both are timed in the same process, interleaved per module, so their ratio holds
on a noisy machine. Params and FLOPs come from `costs` (meta tensors), memory from the process
(and CUDA) peaks.
"""

from __future__ import annotations

import contextlib
import resource
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .latency import time_calls
from .quant import QuantConfig



@dataclass(frozen=True)
class BenchConfig:
    backend: str = "onnxruntime"  # onnxruntime | tensorrt | torch
    precision: str = "fp32"
    runs: int = 20
    warmup: int = 3
    device: str = "cpu"  # torch backend and reference: cpu or cuda
    compile: bool = True  # torch backend: torch.compile (CUDA graphs on cuda)
    engines: Path = Path("engines")
    compare: tuple[str, ...] = ()  # more precisions timed in the same run against `precision` (ONNX backends)
    eval_episodes: int = 10  # sweeps: held-out benchmark episodes per configuration for its success rate
    quant: QuantConfig = field(default_factory=QuantConfig)  # int8 / fp8: method and recipe (None: measured)


def reference_calls(policy, sample, noise, device, dtype):
    """Graph name (and "end_to_end") -> zero-argument call of the uncompressed model on fixed inputs
    (the family's `module_calls`). Moves the policy's model to `device` / `dtype` (a copy of a 7.6 B
    model would double the memory)."""
    import torch

    from .models import export_declaration

    with torch.no_grad():
        calls = export_declaration(policy).module_calls(policy, sample, noise, device, dtype)

    def sync(fn):
        def call():
            with torch.no_grad():
                fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
        return call

    return {name: sync(fn) for name, fn in calls.items()}


def _compiled_calls(pipe, sample, noise, observation: dict):
    image, instruction = sample.load_image(), sample.instruction
    tensors = pipe.run(pipe.inputs(image, instruction, noise, **observation))
    calls = {}
    for name, r in pipe.runners.items():
        feed = {t["name"]: tensors[t["name"]] for t in pipe.graphs[name]["inputs"]}
        calls[name] = lambda r=r, feed=feed: r.infer(feed)
    calls["end_to_end"] = lambda: pipe.predict_normalized(image, instruction, noise, **observation)
    return calls


def compiled_pipeline(policy, compiled, cfg: BenchConfig, scratch: Path, precision: str | None = None):
    """The compiled pipeline on cfg.backend; ONNX backends export graphs into `scratch` first (every
    precision of `cfg` at once, reused by later calls with another `precision`)."""
    precision = precision or cfg.precision
    if cfg.backend == "torch":
        from .backends.torch import pipeline

        return pipeline(policy, compiled.model, cfg.device, precision, cfg.compile)
    from .export import ExportConfig, export
    from .models import export_declaration
    from .runtime import GraphPipeline
    from .runtime.pipeline import check_runnable

    folder = scratch / "graphs"
    if not folder.exists():
        precisions = (cfg.precision, *cfg.compare)
        for p in precisions:  # refuse before exporting (bf16 / fp8 on a CPU)
            check_runnable(p, cfg.backend)
        sample = compiled.heldout[0]
        trace = export_declaration(policy).reference_tensors(policy, compiled.model, sample, policy.noise(0))
        export(policy, compiled.model, folder, ExportConfig(precisions, quant=cfg.quant), trace, compiled.provenance(),
               progress=False, data=compiled.quant_data())
        if cfg.backend == "tensorrt":
            from .engines import EngineConfig, build_engines

            for p in precisions:
                build_engines(folder, cfg.engines, EngineConfig(p), progress=False)
    return GraphPipeline(folder, precision, cfg.backend, engines=cfg.engines)


def graph_record(folder: Path) -> dict:
    """From one read of the manifest: `graph_bytes`, precision -> graph -> bytes on disk (with
    external data), and `recipes`, quantized precision -> the recipe its graphs were made with, so
    a timing says what it timed."""
    from .runtime import manifest as manifest_io

    m = manifest_io.read(folder)
    size = lambda f: sum(p.stat().st_size for p in (folder / f, folder / f"{f}.data") if p.exists())  # noqa: E731
    return {"graph_bytes": {p: {g: size(d["file"]) for g, d in graphs.items()} for p, graphs in m["graphs"].items()},
            "recipes": {p: q["recipe"] for p, q in m.get("quantization", {}).items()}}


def measure(policy, compiled, cfg: BenchConfig) -> dict:
    """Latency per module and end to end (reference and compiled, interleaved), costs and memory."""
    import torch

    from .costs import before_after
    from .models import export_declaration

    family = export_declaration(policy)
    sample, noise = compiled.heldout[0].loaded(), policy.noise(0)
    ref_dtype = torch.bfloat16 if cfg.device.startswith("cuda") else torch.float32
    reference = reference_calls(policy, sample, noise, cfg.device, ref_dtype)
    others = {}
    with tempfile.TemporaryDirectory(prefix="vlacompile-bench.") as scratch, contextlib.ExitStack() as stack:
        pipes = {p: stack.enter_context(compiled_pipeline(policy, compiled, cfg, Path(scratch), p))
                 for p in (cfg.precision, *cfg.compare)}
        observation = family.observation(sample)
        calls = {p: _compiled_calls(pipe, sample, noise.numpy(), observation) for p, pipe in pipes.items()}
        latency = {}
        for name in [*family.BENCH_MODULES, "end_to_end"]:  # interleaved per module: ratios hold on a noisy machine
            latency[name] = {"reference": time_calls(reference[name], cfg.warmup, cfg.runs)}
            for p in pipes:
                latency[name][p] = time_calls(calls[p][name], cfg.warmup, cfg.runs)
            latency[name]["compiled"] = latency[name][cfg.precision]
        if cfg.backend != "torch":
            others.update(graph_record(Path(scratch) / "graphs"))
    ref, new = before_after(policy.cfg, compiled.config)
    memory = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if cfg.device.startswith("cuda"):
        memory["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return {"model": policy.source, "modules": family.BENCH_MODULES, "compile": compiled.config.to_json(),
            "backend": cfg.backend, "precision": cfg.precision, "device": cfg.device, "runs": cfg.runs, "warmup": cfg.warmup,
            "reference": f"PyTorch eager, uncompressed, {str(ref_dtype).removeprefix('torch.')}",
            "latency": latency, "costs": {"reference": [c.to_json() for c in ref],
                                          "compressed": [c.to_json() for c in new]},
            "memory": memory, "machine": machine(), "precisions": [cfg.precision, *cfg.compare], **others}


def machine() -> dict:
    import os
    import platform

    import torch

    out = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def _cell(ref: float, new: float, fmt) -> str:
    return f"{fmt(ref)} -> {fmt(new)} ({new / ref:.1%})" if ref else f"{fmt(ref)} -> {fmt(new)}"


def _tokens(module: str, cost: dict, visual: int, compile: dict) -> str:
    """Tokens a module processes; for the LLM, the visual tokens kept by the static selection."""
    if module != "llm":
        return f"{cost['tokens_in']}"
    kept = (compile.get("tokens") or {}).get("tokens", visual)
    return f"{visual} -> {kept} visual"


def _steps(module: str, cost: dict, compile: dict) -> str:
    interval = (compile.get("cache") or {}).get("interval", 1)
    if module != "action_head" or interval == 1:
        return f"{cost['steps']}"
    full = -(-cost["steps"] // interval)
    return f"{cost['steps']} ({full} full, {cost['steps'] - full} cached)"


def table1(result: dict) -> tuple[list[str], list[list[str]]]:
    """Rows in the style of EfficientVLA's Table 1: per module and in total, reference -> compiled
    with the compiled share in parentheses; time as p50 with the speedup."""
    from .cli.options import human

    ref = {c["module"]: c for c in result["costs"]["reference"]}
    new = {c["module"]: c for c in result["costs"]["compressed"]}
    rows = []
    for graph, module in [*result["modules"].items(), ("end_to_end", "total")]:
        t = result["latency"][graph]
        r50, n50 = t["reference"]["p50_ms"], t["compiled"]["p50_ms"]
        time = f"{r50:.1f} -> {n50:.1f} ms ({r50 / n50:.2f}x), p90 {t['compiled']['p90_ms']:.1f}"
        if module == "total":
            p = [sum(c[k] for c in result["costs"][side]) for side in ("reference", "compressed") for k in ("params", "flops")]
            rows.append(["end to end", _cell(p[0], p[2], human), "", "", time,
                         _cell(p[1], p[3], lambda v: human(v, "FLOP"))])
            continue
        a, b = ref[module], new[module]
        rows.append([module, _cell(a["params"], b["params"], human), _tokens(module, a, ref["vision"]["tokens_out"], result["compile"]),
                     _steps(module, a, result["compile"]), time, _cell(a["flops"], b["flops"], lambda v: human(v, "FLOP"))])
    return ["module", "params", "tokens", "steps", "time p50", "FLOPs"], rows


def precision_table(result: dict) -> tuple[list[str], list[list[str]]]:
    """Every precision of one run against the first: p50 per module and end to end, and graph sizes."""
    first, *others = result["precisions"]
    sizes = result.get("graph_bytes", {})
    rows = []
    for graph in [*result["modules"], "end_to_end"]:
        t = result["latency"][graph]
        row = [graph.replace("_", " "), f"{t[first]['p50_ms']:.2f} ms"]
        row += [f"{t[p]['p50_ms']:.2f} ms ({t[first]['p50_ms'] / t[p]['p50_ms']:.2f}x)" for p in others]
        if sizes:
            total = lambda p: sum(sizes[p].values()) if graph == "end_to_end" else sizes[p][graph]  # noqa: E731
            row += [f"{total(first) / 1e6:.2f} MB"] + [f"{total(p) / 1e6:.2f} MB ({total(p) / total(first):.0%})"
                                                       for p in others]
        rows.append(row)
    headers = ["module", f"{first} p50", *[f"{p} p50 (speedup)" for p in others]]
    if sizes:
        headers += [f"{first} graph", *[f"{p} graph (size)" for p in others]]
    return headers, rows


def markdown(result: dict) -> str:
    headers, rows = table1(result)
    lines = [f"# vlacompile bench: {result['model']}", "",
             f"- compiled: {result['backend']} {', '.join(result.get('precisions', [result['precision']]))} on "
             f"{result['device']}; reference: {result['reference']}",
             f"- compile config: `{result['compile']}`",
             f"- {result['runs']} timed runs after {result['warmup']} warm-up runs, both sides in one process",
             f"- machine: {result['machine']}", f"- memory: {result['memory']}",
             *[f"- {p} recipe ({r.get('source', 'given')}): quantized {', '.join(r['quantize']) or 'nothing'}"
               + (f"; kept float {', '.join(r['keep_float'])}" if r.get("keep_float") else "")
               for p, r in result.get("recipes", {}).items()], "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if len(result.get("precisions", [])) > 1:
        headers, rows = precision_table(result)
        lines += ["", f"Precisions in the same run ({result['backend']}, {result['device']}):", "",
                  "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
