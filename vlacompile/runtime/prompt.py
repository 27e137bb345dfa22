"""Prompt ids from a manifest's "prompt" entry. Needs only `tokenizers`.

ids = encode(template with the instruction, add_special_tokens) (tokenizer.json's post-processor adds
BOS; it is prepended only if missing) + suffix_ids, right-padded with pad_id to `length`, the
graphs' fixed prompt budget. Two families of outputs:
- CogACT ("cognition_index": "last_real"): cognition_index = len(ids) - 1, the last real id, counted
  in input_ids (not in the visual + text sequence the LLM sees); a prompt over budget is refused;
- pi0 ("valid": "ids_valid"): a mask of the real ids; "newline": "append_if_missing" ends the
  instruction with "\n" (LeRobot's Pi0NewLineProcessor) and "overflow": "truncate" keeps the first
  `length` ids, as LeRobot's tokenizer step does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import UserError

MAX_TOKEN_CHARS = 64  # longer than any token of a Llama-style vocabulary (Llama-2's longest is 16)
LOWERCASE = {"instruction": True, "none": False}  # what is lowercased: the instruction only, or nothing


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise UserError(f"{path}: not a readable tokenizer.json ({str(exc).splitlines()[0]})") from None


def declaration(template: str, lowercase: bool, bos_id: int, suffix_ids: Sequence[int], pad_id: int,
                length: int | None, tokenizer: str = "tokenizer.json") -> dict:
    """The manifest's "prompt" entry (docs/CONTRACT.md, Prompt)."""
    return {"template": template, "lowercase": "instruction" if lowercase else "none", "tokenizer": tokenizer,
            "add_special_tokens": True, "bos_id": bos_id, "bos": "if_missing", "suffix_ids": list(suffix_ids),
            "padding": "right", "pad_id": pad_id, "length": length, "cognition_index": "last_real"}


def masked_declaration(bos_id: int, pad_id: int, length: int, tokenizer: str = "tokenizer.json") -> dict:
    """pi0's "prompt" entry: ids and their validity mask, LeRobot's newline and truncation."""
    return {"template": "{instruction}", "lowercase": "none", "tokenizer": tokenizer, "add_special_tokens": True,
            "bos_id": bos_id, "bos": "if_missing", "suffix_ids": [], "newline": "append_if_missing",
            "padding": "right", "pad_id": pad_id, "length": length, "overflow": "truncate", "valid": "ids_valid"}


def check_instruction(instruction) -> str:
    """A non-empty str that is valid Unicode (a non-UTF-8 command-line argument arrives with
    surrogate escapes that no tokenizer can encode)."""
    if not isinstance(instruction, str):
        raise UserError(f"the instruction must be a str (got {type(instruction).__name__}); say what the robot "
                        "should do, e.g. 'pick up the red block'")
    try:
        instruction.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("--instruction is not valid UTF-8 text; pass it in UTF-8 (check the terminal's or "
                        "caller's encoding)") from None
    if not instruction.strip():
        raise UserError("--instruction is empty: say what the robot should do")
    return instruction


class Prompt:
    """[BOS, template tokens..., suffix ids...]; `padded` right-pads to the graphs' fixed length."""

    def __init__(self, tokenizer, template: str, bos_id: int, suffix_ids: Sequence[int], lowercase: bool = True,
                 length: int | None = None, pad_id: int = 0, newline: bool = False, truncate: bool = False):
        self.tok, self.template, self.bos_id = tokenizer, template, bos_id
        self.suffix_ids, self.lowercase, self.length, self.pad_id = list(suffix_ids), lowercase, length, pad_id
        self.newline, self.truncate = newline, truncate

    @classmethod
    def from_declaration(cls, folder: Path, decl: dict) -> "Prompt":
        expected = {"add_special_tokens": True, "bos": "if_missing", "padding": "right"}
        choices = {"lowercase": tuple(LOWERCASE), "newline": (None, "append_if_missing"),
                   "overflow": (None, "refuse", "truncate")}
        problems = [f"{k} {decl.get(k)!r}" for k, v in expected.items() if decl.get(k) != v]
        problems += [f"{k} {decl.get(k)!r}" for k, v in choices.items() if decl.get(k) not in v]
        if (decl.get("cognition_index"), decl.get("valid")) not in (("last_real", None), (None, "ids_valid")):
            problems.append(f"outputs cognition_index {decl.get('cognition_index')!r}, valid {decl.get('valid')!r}")
        if problems:
            raise UserError(f"the manifest's prompt asks for {', '.join(problems)}, which this runtime does not "
                            f"implement ({expected}, {choices}, cognition_index 'last_real' or valid 'ids_valid'); "
                            "upgrade vlacompile or export the graphs again")
        return cls(load_tokenizer(Path(folder) / decl["tokenizer"]), decl["template"], decl["bos_id"],
                   decl["suffix_ids"], LOWERCASE[decl["lowercase"]], decl["length"], decl["pad_id"],
                   decl.get("newline") == "append_if_missing", decl.get("overflow") == "truncate")

    def _too_long(self, n: str, instruction: str) -> UserError:
        words = len(instruction.split())
        return UserError(f"the instruction ({words} words) makes a prompt of {n} tokens, more than the model's "
                         f"budget of {self.length} (template and special tokens included); shorten it")

    def ids(self, instruction: str) -> list[int]:
        """The real ids; with a `length`, refused beyond it before the full text is tokenized (a
        10,000-word instruction is never encoded, let alone run)."""
        instruction = check_instruction(instruction)
        if self.length is not None and len(instruction) > MAX_TOKEN_CHARS * self.length:
            if not self.truncate:
                raise self._too_long(f"at least {len(instruction) // MAX_TOKEN_CHARS}", instruction)
            instruction = instruction[: MAX_TOKEN_CHARS * self.length]  # what is cut lies past `length` ids
        if self.newline and not instruction.endswith("\n"):
            instruction += "\n"
        text = self.template.format(instruction=instruction.lower() if self.lowercase else instruction)
        ids = self.tok.encode(text, add_special_tokens=True).ids
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id, *ids]
        ids = [*ids, *self.suffix_ids]
        if self.length is not None and len(ids) > self.length:
            if not self.truncate:
                raise self._too_long(str(len(ids)), instruction)
            ids = ids[: self.length]
        return ids

    def padded(self, instruction: str) -> tuple[list[int], int]:
        """(ids right-padded to `length`, index of the last real id: the cognition token)."""
        ids = self.ids(instruction)
        return ids + [self.pad_id] * (self.length - len(ids)), len(ids) - 1

    def masked(self, instruction: str) -> tuple[list[int], list[bool]]:
        """(ids right-padded to `length`, which of them are real)."""
        ids = self.ids(instruction)
        pad = self.length - len(ids)
        return ids + [self.pad_id] * pad, [True] * len(ids) + [False] * pad
