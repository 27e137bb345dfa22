"""Builds the embedded default's tokenizer: a small Llama-style BPE, trained here, shipped as JSON.

Same conventions as Llama-2's tokenizer.json: "▁" metaspace, `<unk>`=0, `<s>`=1, `</s>`=2, BOS
added by the post-processor, and a standalone "▁" piece. Regenerate with
`python -m vlacompile.models.cogact.tiny_tokenizer` (the shipped file is what the model uses).
"""

from __future__ import annotations

import itertools
import string
from pathlib import Path

from .prompt import TEMPLATE

ASSET = Path(__file__).parent / "assets" / "tiny-tokenizer.json"
VOCAB_SIZE = 960
PAD = "<PAD>"  # Prismatic adds a pad token after the vocabulary

VERBS = ["pick up", "put", "place", "move", "push", "open", "close", "stack", "lift", "grasp", "slide",
         "rotate", "knock over", "drop", "wipe", "pour", "turn on", "turn off", "flip", "pull"]
OBJECTS = ["red block", "blue block", "green block", "yellow cube", "coke can", "apple", "orange",
           "sponge", "spoon", "cup", "bowl", "bottle", "carrot", "eggplant", "towel", "drawer",
           "banana", "marker", "plate", "lid"]
PLACES = ["on the plate", "into the bowl", "in the drawer", "near the cup", "to the left",
          "to the right", "on the towel", "off the table", "upright", "onto the blue block"]


def corpus() -> list[str]:
    lines = [TEMPLATE.format(instruction=f"{v} the {o} {p}") for v, o, p in itertools.product(VERBS, OBJECTS, PLACES)]
    return lines + [TEMPLATE.format(instruction=f"{v} the {o}") for v, o in itertools.product(VERBS, OBJECTS)]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=list(string.printable.strip() + "\n\u2581"),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_special_tokens([PAD])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok


if __name__ == "__main__":
    ASSET.parent.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save(str(ASSET))
    print(f"wrote {ASSET}")
