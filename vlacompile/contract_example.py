"""The worked example of docs/CONTRACT.md: one image, one instruction, one seed, and every number a
client can check itself against (input_ids, cognition_index, the first pixel and noise values, the
final actions), computed by the runtime from the graphs of the default build.

    python -m vlacompile.contract_example                 # exports the default build's graphs to a
                                                          # temporary folder (fp32), then rewrites
                                                          # the block in docs/CONTRACT.md
    python -m vlacompile.contract_example --graphs graphs # from graphs already built (`make build`)

The block depends on the embedded model's weights: re-run this whenever they change (a test
recomputes it and fails with this command when the document is stale).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from .fsutil import write_text

IMAGE = "calib_data/images/ep00_step00.png"
INSTRUCTION = "Pick up the blue block"
SEED = 0
DOC = Path("docs/CONTRACT.md")
BEGIN, END = "<!-- worked-example:begin (python -m vlacompile.contract_example) -->", "<!-- worked-example:end -->"


def compute(graphs: Path, image_path: str | Path = IMAGE, instruction: str = INSTRUCTION, seed: int = SEED) -> dict:
    """The example's numbers, from the fp32 graphs in `graphs` through the runtime."""
    from .runtime import GraphPipeline
    from .runtime.image import open_image

    with GraphPipeline(graphs, "fp32") as pipe:
        image = open_image(Path(image_path))
        tensors = pipe.inputs(image, instruction, pipe.noise(seed))
        out = pipe.run(tensors)
        actions = pipe.predict(image, instruction, seed=seed)
        m = pipe.manifest
    return {"image": str(image_path), "size": list(image.size), "instruction": instruction, "seed": seed,
            "model": m["model"]["source"], "model_hash": m["calibration"]["model_hash"],
            "compile": m["compile"],
            "input_ids": tensors["input_ids"][0].tolist(), "cognition_index": int(tensors["cognition_index"][0]),
            "pixels[0, 0, 112, 100:106]": tensors["pixels"][0, 0, 112, 100:106].tolist(),
            "pixels[0, 3, 112, 100:106]": tensors["pixels"][0, 3, 112, 100:106].tolist(),
            "noise[0, 0, :]": tensors["noise"][0, 0].tolist(),
            "normalized actions[0, 0, :]": out["actions"][0, 0].tolist(),
            "actions": np.round(actions, 6).tolist()}


def render(example: dict) -> str:
    """The Markdown block between the markers."""
    fmt = lambda values: "[" + ", ".join(f"{v:.7g}" for v in values) + "]"  # noqa: E731
    rows = "\n".join("  [" + ", ".join(f"{v: .6f}" for v in row) + "]," for row in example["actions"])
    return "\n".join([
        BEGIN,
        f"Model `{example['model']}` (weights sha256 `{example['model_hash'][:16]}...`), built with "
        f"`vlacompile build` defaults: `{json.dumps(example['compile'], separators=(',', ':'))}`; fp32 graphs.",
        "",
        f"- image: `{example['image']}` ({example['size'][0]} x {example['size'][1]} RGB)",
        f"- instruction: `{example['instruction']}`",
        f"- seed: `{example['seed']}`",
        "",
        "```text",
        f"input_ids       = {example['input_ids']}",
        f"cognition_index = {example['cognition_index']}",
        f"pixels[0, 0, 112, 100:106] = {fmt(example['pixels[0, 0, 112, 100:106]'])}   (DINOv2 normalization, red)",
        f"pixels[0, 3, 112, 100:106] = {fmt(example['pixels[0, 3, 112, 100:106]'])}   (SigLIP normalization, red)",
        f"noise[0, 0, :]      = {fmt(example['noise[0, 0, :]'])}",
        f"normalized actions[0, 0, :] = {fmt(example['normalized actions[0, 0, :]'])}",
        "actions (16 x 7, x y z roll pitch yaw gripper, un-normalized) =",
        "[",
        rows,
        "]",
        "```",
        END])


def parse(doc_text: str) -> dict:
    """The numbers back from a document's block (what the test compares with `compute`)."""
    block = doc_text[doc_text.index(BEGIN):doc_text.index(END)]
    code = block[block.index("```text") + len("```text"):block.rindex("```")]
    values = {}
    for line in code.splitlines():
        if " = " in line and not line.startswith("actions"):
            key, value = line.split(" = ", 1)
            values[key.strip()] = json.loads(value.split("   (")[0])
    rows = code[code.index("un-normalized) =") + len("un-normalized) ="):]
    values["actions"] = json.loads(rows.replace(",\n]", "\n]"))
    return values


def update(doc: Path, block: str) -> None:
    text = doc.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    write_text(doc, text[:start] + block + text[end:])


def _default_graphs(out: Path) -> Path:
    """The default build's graphs (fp32 only), exported into `out`."""
    from . import pipeline
    from .cli.compile_options import compress_config
    from .export import ExportConfig, export
    from .models import export_declaration, resolve

    policy = resolve()
    config = compress_config(policy.cfg.llm.layers, policy.cfg.visual_tokens, 22, 56, 0.25, 5, "efficientvla", 2)
    compiled = pipeline.rewrite(policy, config, progress=False)
    sample = compiled.heldout[0]
    trace = export_declaration(policy).reference_tensors(policy, compiled.model, sample, policy.noise(0))
    return export(policy, compiled.model, out / "graphs", ExportConfig(("fp32",)), trace, compiled.provenance(),
                  progress=False).folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=Path, help="graphs of the default build (default: export them now)")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vlacompile-contract.") as scratch:
        graphs = args.graphs or _default_graphs(Path(scratch))
        update(args.doc, render(compute(graphs)))
    print(f"rewrote the worked example in {args.doc}")


if __name__ == "__main__":
    main()
