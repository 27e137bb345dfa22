"""Prompt ids from a declared template (a manifest's "prompt" entry). Needs only `tokenizers`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import UserError


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise UserError(f"{path}: not a readable tokenizer.json ({str(exc).splitlines()[0]})") from None


class Prompt:
    """[BOS, template tokens..., suffix ids...]; `padded` right-pads to the graphs' fixed length."""

    def __init__(self, tokenizer, template: str, bos_id: int, suffix_ids: Sequence[int], lowercase: bool = True,
                 length: int | None = None, pad_id: int = 0):
        self.tok, self.template, self.bos_id = tokenizer, template, bos_id
        self.suffix_ids, self.lowercase, self.length, self.pad_id = list(suffix_ids), lowercase, length, pad_id

    @classmethod
    def from_declaration(cls, folder: Path, decl: dict) -> "Prompt":
        return cls(load_tokenizer(Path(folder) / decl["tokenizer"]), decl["template"], decl["bos_id"],
                   decl["suffix_ids"], decl["lowercase"], decl["length"], decl["pad_id"])

    def ids(self, instruction: str) -> list[int]:
        if not instruction.strip():
            raise UserError("--instruction is empty: say what the robot should do")
        text = self.template.format(instruction=instruction.lower() if self.lowercase else instruction)
        ids = self.tok.encode(text, add_special_tokens=True).ids
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id, *ids]
        return [*ids, *self.suffix_ids]

    def padded(self, instruction: str) -> tuple[list[int], int]:
        """(ids right-padded to `length`, index of the last real id: the cognition token)."""
        ids = self.ids(instruction)
        if len(ids) > self.length:
            raise UserError(f"the instruction {instruction!r} makes a prompt of {len(ids)} tokens, more than the "
                            f"graphs' fixed {self.length}; shorten it")
        return ids + [self.pad_id] * (self.length - len(ids)), len(ids) - 1
