"""The prompt as LeRobot's pi0 preprocessor builds it, and the shipped tiny tokenizer."""

from vlacompile.models.pi0.policy import TINY_TOKENIZER
from vlacompile.models.pi0.tokenizer import PromptTokenizer

BRIEF = ["pick up the red block", "put the apple into the bowl", "push the coke can to the left",
         "stack the blue block on the green block", "move the orange near the cup", "place the sponge on the plate",
         "put the cream cube on the teal plate", "push the white carrot to the right",
         "move the yellow can near the orange bowl"]


def test_paligemma_special_ids():
    tok = PromptTokenizer(TINY_TOKENIZER).tok
    assert [tok.token_to_id(t) for t in ("<pad>", "<eos>", "<bos>", "<unk>")] == [0, 1, 2, 3]


def test_prompt_is_bos_task_newline_then_padding():
    tok = PromptTokenizer(TINY_TOKENIZER)
    ids, valid = tok.encode("pick up the red block", 48)
    n = sum(valid)
    assert len(ids) == len(valid) == 48 and valid == [True] * n + [False] * (48 - n)
    assert ids[0] == 2 and ids[n:] == [0] * (48 - n)
    assert tok.tok.id_to_token(ids[n - 1]) == "\n"
    assert tok.tok.decode(ids[1:n]) == "pick up the red block\n"


def test_long_prompts_are_truncated_to_the_budget():
    ids, valid = PromptTokenizer(TINY_TOKENIZER).encode(" and ".join(BRIEF), 48)
    assert len(ids) == 48 and all(valid)


def test_table_top_instructions_are_whole_words():
    tok = PromptTokenizer(TINY_TOKENIZER)
    for text in BRIEF:
        ids, valid = tok.encode(text, 48)
        assert 3 not in ids  # no <unk>
        assert sum(valid) == len(text.split()) + 2  # BOS, one id per word, "\n"


def test_shipped_tokenizer_is_the_one_the_builder_makes(tmp_path):
    from vlacompile.models.pi0.tiny_tokenizer import build_tokenizer

    path = tmp_path / "tok.json"
    build_tokenizer().save(str(path))
    assert path.read_bytes() == TINY_TOKENIZER.read_bytes()
