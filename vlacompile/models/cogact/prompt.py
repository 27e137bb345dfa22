"""CogACT's released prompt: the template and Llama's special ids. The id building itself is the
runtime's `Prompt`, so the deployed pipeline tokenizes exactly as the PyTorch model does."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...runtime.prompt import Prompt, load_tokenizer
from ...runtime.prompt import declaration as prompt_declaration

TEMPLATE = "In: What action should the robot take to {instruction}?\nOut:"
SPACE_PIECE = "\u2581"  # Llama's empty "▁" piece, id 29871 in Llama-2's vocabulary
BOS, EOS = "<s>", "</s>"
PAD_ID = 0  # any id works: padding is masked as a key and is never the cognition token


class PromptTokenizer:
    """Wraps a Llama-style `tokenizer.json` and builds the released prompt ids."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tok = load_tokenizer(self.path)
        ids = {name: self.tok.token_to_id(name) for name in (BOS, EOS, SPACE_PIECE)}
        missing = [name for name, i in ids.items() if i is None]
        if missing:
            raise UserError(f"{self.path}: not a Llama tokenizer, it lacks {missing}; use the Llama-2 tokenizer.json")
        self.bos_id, self.eos_id, self.space_id = ids[BOS], ids[EOS], ids[SPACE_PIECE]

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def declaration(self, length: int) -> dict:
        """The manifest's "prompt" entry: all the runtime needs to rebuild these ids."""
        return prompt_declaration(TEMPLATE, True, self.bos_id, [self.space_id, self.eos_id], PAD_ID, length)

    def prompt(self, length: int | None = None) -> Prompt:
        """`length`: the budget (with it, longer prompts are refused); None: unbounded."""
        return Prompt(self.tok, TEMPLATE, self.bos_id, [self.space_id, self.eos_id], True, length, PAD_ID)

    def prompt_ids(self, instruction: str, length: int | None = None) -> list[int]:
        """[BOS, prompt..., "▁", EOS]; the final EOS is the cognition token."""
        return self.prompt(length).ids(instruction)
