"""Prompt ids follow CogACT's released template."""

from vlacompile.models.cogact.policy import TINY_TOKENIZER
from vlacompile.models.cogact.prompt import PromptTokenizer


def test_prompt_template_and_appended_ids():
    tok = PromptTokenizer(TINY_TOKENIZER)
    ids = tok.prompt_ids("Pick Up the Red Block")
    assert ids[0] == tok.bos_id == 1
    assert ids[-2:] == [tok.space_id, tok.eos_id] and tok.eos_id == 2
    assert tok.tok.id_to_token(tok.space_id) == "\u2581"
    text = tok.tok.decode(ids[1:-2])
    assert text == "In: What action should the robot take to pick up the red block?\nOut:"


def test_tiny_tokenizer_fits_the_tiny_vocabulary():
    from vlacompile.models.cogact.config import PRESETS

    tok = PromptTokenizer(TINY_TOKENIZER)
    assert tok.vocab_size <= PRESETS["cogact-tiny"].llm.vocab
    assert len(tok.prompt_ids("pick up the red block")) <= PRESETS["cogact-tiny"].text_len + 1


def test_shipped_tokenizer_is_the_one_the_builder_makes(tmp_path):
    from vlacompile.models.cogact.tiny_tokenizer import build_tokenizer

    path = tmp_path / "tok.json"
    build_tokenizer().save(str(path))
    fresh, shipped = PromptTokenizer(path), PromptTokenizer(TINY_TOKENIZER)
    for text in ("stack the blue block on the green block", "knock over the coke can"):
        assert fresh.prompt_ids(text) == shipped.prompt_ids(text)
