"""`validate`: lint the graphs, compare each one and the whole pipeline with the PyTorch rewritten
model on calibration samples, localize failures, and leave the files to re-check on a device.

Beside the graphs it writes, per graph, `<graph>.inputs.json` (Polygraphy input feeds) and
`<graph>.reference.json` (the PyTorch outputs as Polygraphy RunResults); the manifest records them,
their hashes, the tolerances and the `polygraphy run` command that repeats each check.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..fsutil import write_text
from ..runtime import manifest as manifest_io
from .lint import LintReport, lint
from .parity import TOLERANCES, Parity, as_run_results, compare


PARITY_FILES = (".inputs.json", ".reference.json")
NO_CPU_BF16 = ("ONNX Runtime's CPU provider has no bf16 kernels; check bf16 on the device with "
               "`vlacompile validate --backend tensorrt`")
NO_CPU_FP8 = ("ONNX Runtime's CPU provider has no fp8 compute (TensorRT runs fp8 on Ada, Hopper and Thor); the lint "
              "checked the graphs here, check their parity on the device with `vlacompile validate --backend tensorrt`")
NOT_ON_CPU = {"bf16": NO_CPU_BF16, "fp8": NO_CPU_FP8}


def _islands(manifest: dict, precision: str) -> dict | None:
    """The family's float islands recorded with a quantized precision (the lint checks them)."""
    return manifest.get("quantization", {}).get(precision, {}).get("islands")


@dataclass
class Validation:
    lint: list[LintReport] = field(default_factory=list)
    graphs: list[Parity] = field(default_factory=list)
    pipelines: list[Parity] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)  # precision -> why its parity was not checked here

    def __bool__(self) -> bool:
        return all(self.lint) and all(self.graphs) and all(self.pipelines)

    def to_json(self) -> dict:
        return {"passed": bool(self), "skipped": self.skipped,
                "lint": {r.graph: {"nodes": r.nodes, "findings": [str(f) for f in r.findings]} for r in self.lint},
                "graphs": [p.to_json() for p in self.graphs], "pipelines": [p.to_json() for p in self.pipelines]}


def polygraphy_command(folder: Path, graph: str, file: str, precision: str) -> str:
    f = Path(folder)
    return (f"polygraphy run {f / file} --onnxrt --load-inputs {f / f'{graph}.inputs.json'} "
            f"--load-outputs {f / f'{graph}.reference.json'} {TOLERANCES[precision].polygraphy_args()}")


def reference_samples(policy, compressed, samples, seed: int = 0) -> list[dict]:
    """Every graph tensor for each sample, from the PyTorch rewritten model (noise seeded per sample)."""
    from ..models import export_declaration

    family = export_declaration(policy)
    return [family.reference_tensors(policy, compressed, s, policy.noise(seed + i))
            for i, s in enumerate(samples)]


def _feeds_and_references(decl: dict, tensors: list[dict]) -> tuple[list[dict], list[dict]]:
    """One graph's input feeds and expected outputs, per sample, picked from every sample's tensors."""
    pick = lambda io: [{t["name"]: s[t["name"]] for t in decl[io]} for s in tensors]  # noqa: E731
    return pick("inputs"), pick("outputs")


def _save_parity_files(folder: Path, manifest: dict, tensors: list[dict]) -> list[str]:
    from polygraphy import json as pjson

    names = []
    for graph, decl in next(iter(manifest["graphs"].values())).items():  # IO is the same at every precision
        feeds, refs = _feeds_and_references(decl, tensors)
        write_text(folder / f"{graph}.inputs.json", pjson.to_json(feeds))
        write_text(folder / f"{graph}.reference.json", pjson.to_json(as_run_results("pytorch", refs)))
        names += [f"{graph}.inputs.json", f"{graph}.reference.json"]
    return names


def check_graph(folder: Path, manifest: dict, graph: str, precision: str, tensors: list[dict],
                backend: str = "onnxruntime", file: Path | None = None) -> Parity:
    """`file`: what the backend loads (default: the ONNX graph; a TensorRT engine for tensorrt)."""
    from polygraphy.comparator import Comparator

    from ..backends import runner

    decl = manifest["graphs"][precision][graph]
    feeds, refs = _feeds_and_references(decl, tensors)
    got = Comparator.run([runner(backend, file or folder / decl["file"])], data_loader=feeds)
    return Parity(graph, precision, len(tensors), compare(got, as_run_results("pytorch", refs), TOLERANCES[precision]))


def check_pipeline(folder: Path, precision: str, policy, compressed, samples, seed: int = 0,
                   backend: str = "onnxruntime", engines: Path | None = None) -> Parity:
    """Image + instruction -> normalized actions through the runtime (padding, graphs and all)
    against the PyTorch rewritten model on the unpadded prompt, with the same noise."""
    from ..models import export_declaration
    from ..runtime import GraphPipeline

    family = export_declaration(policy)
    got, want = [], []
    with GraphPipeline(folder, precision, backend, verify=False, engines=engines) as pipe:
        for i, s in enumerate(samples):
            noise = policy.noise(seed + i)
            got.append({"actions": pipe.predict_normalized(s.load_image(), s.instruction, noise.numpy(),
                                                           **family.observation(s))[None]})
            want.append({"actions": family.reference_actions(policy, compressed, s, noise)})
    return Parity("pipeline", precision, len(samples),
                  compare(as_run_results(f"onnxrt:{precision}", got), as_run_results("pytorch", want),
                          TOLERANCES[precision]))


def localize_fault(folder: Path, manifest: dict, parity: Parity, policy, compressed, sample: dict) -> None:
    """Set parity.fault: re-export the graph in float32 from the PyTorch model and find the first
    tensor of the failing graph that departs from it. If the fresh export fails too, the exporter
    mistranslates the module, and that is what the note says."""
    import torch

    from ..export import ExportConfig
    from ..export.onnx import export_graph
    from ..models import export_declaration
    from .localize import localize

    family = export_declaration(policy)
    spec = next(s for s in family.graphs(compressed) if s.name == parity.graph)
    feed = {t.name: sample[t.name] for t in spec.inputs}
    exporter = manifest["export"]["exporter"]
    # named like a staging folder of `folder`, so a killed run's leftover is cleaned by the next export
    scratch_name = {"prefix": f".{folder.name}.localize.", "suffix": ".partial"}
    with tempfile.TemporaryDirectory(dir=folder.parent, **scratch_name) as scratch:
        trusted = Path(scratch) / f"{spec.name}.fp32.onnx"
        model = family.for_export(compressed, "fp32")
        export_graph(spec.wrapper(model), tuple(torch.from_numpy(feed[t.name]) for t in spec.inputs), spec, trusted,
                     exporter, manifest["export"].get("opset", ExportConfig.opset))
        fresh = check_graph(Path(scratch), {"graphs": {"fp32": {spec.name: {**manifest["graphs"]["fp32"][spec.name],
                                                                           "file": trusted.name}}}},
                            spec.name, "fp32", [sample])
        if not fresh:
            parity.note = f"a fresh {exporter} export fails too: the exporter mistranslates this module; try the other exporter"
            return
        parity.fault = localize(folder / manifest["graphs"][parity.precision][spec.name]["file"], trusted, feed,
                                TOLERANCES[parity.precision])
        if parity.fault is None:
            parity.note = "every tensor matches a fresh export; the difference is outside the traced graph"


def validate(folder: Path, policy, compressed, samples, precisions=None, backend: str = "onnxruntime",
             progress: bool = True, engines: Path | None = None, verified: bool = False) -> Validation:
    """`verified`: the caller has just checked the graphs' hashes (hashing a 7.6 B model's graphs
    takes a while, so it is done once). Holds the lock on `folder`: validation rewrites its manifest."""
    from ..output import lock

    folder = Path(folder)
    with lock(folder):
        return _validate(folder, policy, compressed, samples, precisions, backend, progress, engines, verified)


def _validate(folder: Path, policy, compressed, samples, precisions, backend: str, progress: bool,
              engines: Path | None, verified: bool) -> Validation:
    from tqdm import tqdm

    from ..runtime.pipeline import model_files

    manifest = manifest_io.read(folder)
    if not verified:
        manifest_io.verify(folder, manifest, manifest_io.needed_files(manifest))
    precisions = list(precisions or manifest["graphs"])
    missing = [p for p in precisions if p not in manifest["graphs"]]
    if missing:
        raise UserError(f"{folder} has no {', '.join(missing)} graphs; it has {', '.join(manifest['graphs'])}")
    result = Validation(lint=[lint(folder / g["file"], _islands(manifest, p))
                              for p in precisions for g in manifest["graphs"][p].values()])
    if backend == "onnxruntime":
        result.skipped = {p: NOT_ON_CPU[p] for p in precisions if p in NOT_ON_CPU}
    checked = [p for p in precisions if p not in result.skipped]
    files = {p: model_files(folder, manifest, p, backend, engines) for p in checked}
    _unseal_validation(folder, manifest)
    tensors = reference_samples(policy, compressed, samples)
    written = _save_parity_files(folder, manifest, tensors)
    names = [Path(s.image_path).name for s in samples]
    jobs = [(p, g) for p in checked for g in manifest["pipeline"]] + [(p, None) for p in checked]
    for precision, graph in tqdm(jobs, desc="validate", unit="check", disable=not progress):
        if graph is None:
            result.pipelines.append(check_pipeline(folder, precision, policy, compressed, samples, backend=backend,
                                                   engines=engines))
            result.pipelines[-1].sample_names = names
            continue
        parity = check_graph(folder, manifest, graph, precision, tensors, backend, files[precision][graph])
        parity.sample_names = names
        if not parity and backend == "onnxruntime":
            localize_fault(folder, manifest, parity, policy, compressed, tensors[0])
        elif not parity:  # Polygraphy pairs TensorRT's and ONNX Runtime's tensors itself
            parity.note = (f"localize with: polygraphy run {folder / manifest['graphs'][precision][graph]['file']} "
                           f"--trt --onnxrt --trt-outputs mark all --onnx-outputs mark all "
                           f"--load-inputs {folder / f'{graph}.inputs.json'}")
        result.graphs.append(parity)
    manifest["parity"] = {
        "reference": "PyTorch rewritten model, float32", "samples": len(samples), "backend": backend,
        "polygraphy_backend": "--onnxrt (or --trt on a device with TensorRT)",
        "tolerances": {p: TOLERANCES[p].__dict__ for p in precisions},
        "commands": {f"{g}.{p}": polygraphy_command(folder, g, d["file"], p)
                     for p in precisions for g, d in manifest["graphs"][p].items()},
        **result.to_json()}
    manifest["validation"] = {"completed": True, "passed": bool(result),
                              "average_only": any(p.average_only for p in result.graphs + result.pipelines),
                              "precisions": checked, "skipped": result.skipped, "samples": len(samples),
                              "backend": backend}
    manifest_io.seal(folder, manifest, written)
    return result


def _unseal_validation(folder: Path, manifest: dict) -> None:
    """Before anything is rewritten: the folder is unvalidated, and lists no parity files, until
    this validation completes. An interrupted validation then leaves graphs that `package` and
    `runtime.load` refuse as unvalidated, never a folder whose old verdict covers new files."""
    manifest.pop("parity", None)
    for name in [n for n in manifest.get("files", {}) if n.endswith(PARITY_FILES)]:
        manifest["files"].pop(name)
        manifest.get("sizes", {}).pop(name, None)
    manifest["validation"] = dict(manifest_io.NOT_VALIDATED)
    manifest_io.seal(folder, manifest, [])
