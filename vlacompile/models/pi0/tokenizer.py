"""pi0's prompt: PaliGemma tokenizer ids as LeRobot's pi0 preprocessor makes them (docs/PI0.md §7).

LeRobot appends "\n" to the task (Pi0NewLineProcessor), tokenizes it with BOS, truncates to 48 and
right-pads with the pad id (TokenizerProcessorStep, padding="max_length"). PaliGemma's special ids
are <pad> 0, <eos> 1, <bos> 2.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...runtime.prompt import Prompt, load_tokenizer, masked_declaration

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

    def declaration(self, length: int) -> dict:
        """The manifest's "prompt" entry: the runtime builds the same ids from it (runtime.prompt)."""
        return masked_declaration(self.bos_id, self.pad_id, length)

    def encode(self, instruction: str, length: int) -> tuple[list[int], list[bool]]:
        """(ids, valid), both of `length`: [BOS, task + "\\n"], truncated like LeRobot, then padding."""
        prompt = Prompt(self.tok, "{instruction}", self.bos_id, [], lowercase=False, length=length,
                        pad_id=self.pad_id, newline=True, truncate=True)
        return prompt.masked(instruction)
