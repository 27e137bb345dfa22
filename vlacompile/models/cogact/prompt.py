"""Prompt ids in CogACT's released template. Needs only `tokenizers`: the edge runtime reuses it."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError

TEMPLATE = "In: What action should the robot take to {instruction}?\nOut:"
SPACE_PIECE = "\u2581"  # Llama's empty "▁" piece, id 29871 in Llama-2's vocabulary
BOS, EOS = "<s>", "</s>"


class PromptTokenizer:
    """Wraps a Llama-style `tokenizer.json` and builds the released prompt ids."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        self.path = Path(path)
        try:
            self.tok = Tokenizer.from_file(str(self.path))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise UserError(f"{self.path}: not a readable tokenizer.json ({str(exc).splitlines()[0]})") from None
        ids = {name: self.tok.token_to_id(name) for name in (BOS, EOS, SPACE_PIECE)}
        missing = [name for name, i in ids.items() if i is None]
        if missing:
            raise UserError(f"{self.path}: not a Llama tokenizer, it lacks {missing}; use the Llama-2 tokenizer.json")
        self.bos_id, self.eos_id, self.space_id = ids[BOS], ids[EOS], ids[SPACE_PIECE]

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def prompt_ids(self, instruction: str) -> list[int]:
        """[BOS, prompt..., "▁", EOS]; the final EOS is the cognition token."""
        text = TEMPLATE.format(instruction=instruction.lower())
        ids = self.tok.encode(text, add_special_tokens=True).ids
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id, *ids]
        return [*ids, self.space_id, self.eos_id]
