"""pi0's prompt: PaliGemma tokenizer ids as LeRobot's pi0 preprocessor makes them (docs/PI0.md §7).

LeRobot appends "\n" to the task (Pi0NewLineProcessor), tokenizes it with BOS, truncates to 48 and
right-pads with the pad id (TokenizerProcessorStep, padding="max_length"). PaliGemma's special ids
are <pad> 0, <eos> 1, <bos> 2.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...runtime.prompt import load_tokenizer

BOS, PAD = "<bos>", "<pad>"


class PromptTokenizer:
    """Wraps a PaliGemma-style `tokenizer.json`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tok = load_tokenizer(self.path)
        ids = {name: self.tok.token_to_id(name) for name in (BOS, PAD)}
        missing = [name for name, i in ids.items() if i is None]
        if missing:
            raise UserError(f"{self.path}: not a PaliGemma tokenizer, it lacks {missing}; use the tokenizer.json "
                            "of google/paligemma-3b-pt-224")
        self.bos_id, self.pad_id = ids[BOS], ids[PAD]

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, instruction: str, length: int) -> tuple[list[int], list[bool]]:
        """(ids, valid), both of `length`: [BOS, task + "\\n"], truncated like LeRobot, then padding."""
        if not instruction.strip():
            raise UserError("--instruction is empty: say what the robot should do")
        text = instruction if instruction.endswith("\n") else instruction + "\n"
        ids = self.tok.encode(text, add_special_tokens=True).ids
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id, *ids]
        ids = ids[:length]  # LeRobot truncates silently (truncation=True); so does openpi, with a warning
        pad = length - len(ids)
        return ids + [self.pad_id] * pad, [True] * len(ids) + [False] * pad
