"""Builds pi0-tiny's tokenizer: a small BPE with PaliGemma's conventions, trained here, shipped as JSON.

Conventions kept from PaliGemma's tokenizer: <pad> 0, <eos> 1, <bos> 2, <unk> 3; BOS added by the
post-processor; spaces become "▁" with no dummy prefix; "\n" is a token of its own (pi0's prompt ends
with it). Regenerate with `python -m vlacompile.models.pi0.tiny_tokenizer`; the shipped file is what
the model uses, and a test checks that the builder still makes it.
"""

from __future__ import annotations

import itertools
import string
from pathlib import Path

ASSET = Path(__file__).parent / "assets" / "tiny-tokenizer.json"
VOCAB_SIZE = 256  # an upper bound: training stops near 214, when every corpus word is one token
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]

COLOURS = ["red", "blue", "green", "yellow", "white", "cream", "teal", "orange"]
KINDS = ["block", "cube", "can", "cup", "bowl", "plate", "apple", "orange", "sponge", "carrot"]
ONE_OBJECT = ["pick up the {a}", "push the {a} to the left", "push the {a} to the right", "grasp the {a}",
              "lift the {a}", "knock over the {a}"]
TWO_OBJECTS = ["put the {a} into the {b}", "put the {a} on the {b}", "place the {a} on the {b}",
               "stack the {a} on the {b}", "move the {a} near the {b}"]


def objects() -> list[str]:
    return [f"{c} {k}" for c, k in itertools.product(COLOURS, KINDS)] + KINDS + ["coke can"]


def corpus() -> list[str]:
    objs = objects()
    one = [t.format(a=a) for t, a in itertools.product(ONE_OBJECT, objs)]
    two = [t.format(a=a, b=b) for t, a, b in itertools.product(TWO_OBJECTS, objs, objs) if a != b]
    return [line + "\n" for line in one + two]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n", behavior="isolated"),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never"),
    ])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="never")
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS,
        initial_alphabet=list(string.ascii_letters + string.digits + string.punctuation + "\n\u2581"),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return tok


if __name__ == "__main__":
    ASSET.parent.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save(str(ASSET))
    print(f"wrote {ASSET}")
