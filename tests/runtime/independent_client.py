"""A client written from manifest.json and docs/CONTRACT.md alone, as a robotics engineer would
write one for C++ or ROS 2: onnxruntime, numpy, PIL and tokenizers, and nothing from vlacompile
(importing it is made impossible below). If this file needs to guess anything, the contract is
incomplete.

    python independent_client.py BUNDLE REQUESTS.json PRECISION  ->  JSON list of action chunks
    REQUESTS.json: [{"image": path, "instruction": str, "seed": int}, ...]; for pi0 graphs (the
    manifest has "cameras" and "state") also "state": [numbers], and "image" may be a list of paths,
    one per camera slot.
"""

import sys

sys.modules["vlacompile"] = None  # any `import vlacompile...` now raises ImportError

import hashlib  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

SUPPORTED = {"schema": "vlacompile.graphs/2",
             "generator": "numpy.random.default_rng(seed).standard_normal(shape, dtype=numpy.float32)"}
FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
           "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def read_manifest(folder: Path) -> dict:
    m = json.loads((folder / "manifest.json").read_bytes())
    assert m["schema"] == SUPPORTED["schema"], m["schema"]
    body = json.dumps({k: v for k, v in m.items() if k != "digest"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()
    assert hashlib.sha256(body).hexdigest() == m["digest"], "manifest digest"
    for name, digest in m["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    return m


def pixels(path: str, pre: dict) -> np.ndarray:
    assert pre["color"] == "RGB" and pre["layout"] == "NCHW" and pre["dtype"] == "float32"
    image = Image.open(path).convert("RGB")
    if pre["crop"] == "center":
        w, h = image.size
        s = min(w, h)
        image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    else:
        assert pre["crop"] is None
    size, fit = pre["size"], pre.get("fit", "stretch")
    if fit == "pad" and image.size != (size, size):  # keep the aspect ratio, centre on black
        r = max(image.size[0] / size, image.size[1] / size)
        new = (int(image.size[0] / r), int(image.size[1] / r))
        canvas = Image.new("RGB", (size, size), 0)
        canvas.paste(image.resize(new, FILTERS[pre["resize"]]), ((size - new[0]) // 2, (size - new[1]) // 2))
        image = canvas
    elif fit != "pad":
        assert fit == "stretch", fit
        image = image.resize((size, size), FILTERS[pre["resize"]])
    x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / np.float32(pre["scale"])
    planes = [(x - np.asarray(n["mean"], np.float32)[:, None, None]) / np.asarray(n["std"], np.float32)[:, None, None]
              for n in pre["normalizations"]]
    return np.concatenate(planes)[None]


def prompt(instruction: str, p: dict, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    assert p["padding"] == "right" and p["bos"] == "if_missing" and p["cognition_index"] == "last_real"
    tokenizer = Tokenizer.from_file(str(folder / p["tokenizer"]))
    text = p["template"].format(instruction=instruction.lower() if p["lowercase"] == "instruction" else instruction)
    ids = tokenizer.encode(text, add_special_tokens=p["add_special_tokens"]).ids
    if not ids or ids[0] != p["bos_id"]:
        ids = [p["bos_id"], *ids]
    ids = [*ids, *p["suffix_ids"]]
    assert len(ids) <= p["length"], "over the prompt budget"
    cognition_index = len(ids) - 1
    ids += [p["pad_id"]] * (p["length"] - len(ids))
    return np.asarray([ids], np.int64), np.asarray([cognition_index], np.int64)


def masked_prompt(instruction: str, p: dict, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """pi0: newline appended if missing, truncated to the budget, ids and their validity."""
    assert p["padding"] == "right" and p["bos"] == "if_missing" and p["valid"] == "ids_valid"
    assert p["lowercase"] == "none" and p["newline"] == "append_if_missing" and p["overflow"] == "truncate"
    tokenizer = Tokenizer.from_file(str(folder / p["tokenizer"]))
    text = p["template"].format(instruction=instruction if instruction.endswith("\n") else instruction + "\n")
    ids = tokenizer.encode(text, add_special_tokens=p["add_special_tokens"]).ids
    if not ids or ids[0] != p["bos_id"]:
        ids = [p["bos_id"], *ids]
    ids = [*ids, *p["suffix_ids"]][: p["length"]]
    valid = [True] * len(ids) + [False] * (p["length"] - len(ids))
    ids += [p["pad_id"]] * (p["length"] - len(ids))
    return np.asarray([ids], np.int64), np.asarray([valid])


def observation(r: dict, m: dict, folder: Path, statistics: dict) -> dict:
    """pi0's inputs besides the noise: camera slots, the masked prompt, the normalized state."""
    cams, st = m["cameras"], m["state"]
    paths = r["image"] if isinstance(r["image"], list) else [r["image"]]
    size = m["preprocess"]["size"]
    px = np.full((1, len(cams["slots"]), 3, size, size), cams["absent"]["fill"], np.float32)
    valid = np.zeros((1, len(cams["slots"])), bool)
    for slot, path in enumerate(paths):
        px[0, slot], valid[0, slot] = pixels(path, m["preprocess"])[0], True
    ids, ids_valid = masked_prompt(r["instruction"], m["prompt"], folder)
    assert st["normalize"] == "mean_std"
    (stats,) = statistics.values()
    mean, std = (np.asarray(stats[st["statistics"]][k], np.float64) for k in ("mean", "std"))
    state = np.zeros((1, st["pad_to"]), np.float32)
    state[0, : st["dims"]] = (np.asarray(r["state"], np.float64) - mean) / (std + st["eps"])
    return {cams["input"]: px, cams["valid_input"]: valid, "input_ids": ids, m["prompt"]["valid"]: ids_valid,
            st["input"]: state}


def noise(seed: int, n: dict) -> np.ndarray:
    assert n["generator"] == SUPPORTED["generator"] and n["dtype"] == "float32"
    return np.random.default_rng(seed).standard_normal(tuple(n["shape"]), dtype=np.float32)


def postprocess(normalized: np.ndarray, post: dict, statistics: dict) -> np.ndarray:
    if post["unnormalize"] == "mean_std":  # pi0
        assert post["order"] == ["slice", "unnormalize"]
        (stats,) = statistics.values()
        mean, std = np.asarray(stats["action"]["mean"]), np.asarray(stats["action"]["std"])
        return normalized[..., : post["dims"]] * std + mean
    assert post["order"] == ["clip", "gripper", "unnormalize"] and post["unnormalize"] == "q01_q99"
    a = np.clip(normalized.astype(np.float64), *post["clip"])
    g = post["gripper_dim"]
    a[..., g] = np.where(a[..., g] >= post["gripper_threshold"], post["gripper_values"][1], post["gripper_values"][0])
    (stats,) = statistics.values()  # one dataset: no key to choose
    q01, q99 = np.asarray(stats["action"]["q01"]), np.asarray(stats["action"]["q99"])
    mask = np.asarray(stats["action"].get("mask", [True] * len(q01)), bool)
    return np.where(mask, 0.5 * (a + 1) * (q99 - q01) + q01, a)


def main(folder: Path, requests: list[dict], precision: str) -> list:
    m = read_manifest(folder)
    sessions = {g: ort.InferenceSession(str(folder / m["graphs"][precision][g]["file"]),
                                        providers=["CPUExecutionProvider"]) for g in m["pipeline"]}
    statistics = json.loads((folder / m["postprocess"]["statistics"]).read_text())
    out = []
    for r in requests:
        if "cameras" in m:
            tensors = {**observation(r, m, folder, statistics), "noise": noise(r["seed"], m["noise"])}
        else:
            ids, index = prompt(r["instruction"], m["prompt"], folder)
            tensors = {"pixels": pixels(r["image"], m["preprocess"]), "input_ids": ids, "cognition_index": index,
                       "noise": noise(r["seed"], m["noise"])}
        for g in m["pipeline"]:
            feed = {t["name"]: tensors[t["name"]] for t in m["graphs"][precision][g]["inputs"]}
            names = [t["name"] for t in m["graphs"][precision][g]["outputs"]]
            tensors.update(zip(names, sessions[g].run(names, feed)))
        out.append(postprocess(tensors[m["postprocess"]["input"]][0], m["postprocess"], statistics).tolist())
    assert not [n for n, mod in sys.modules.items() if mod is not None and n.split(".")[0] in ("vlacompile", "torch")]
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()), sys.argv[3])))
