"""Tokenizers for the transformer family: trained BPE and local tokenizer.json files."""

import json

import numpy as np
import pytest

pytest.importorskip("tokenizers", reason="the transformer family needs tokenizers (collapse[torch])")
pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

from collapse.errors import CollapseError  # noqa: E402
from collapse.transformer.tokenizer import END_OF_TEXT, TextTokenizer  # noqa: E402

TEXTS = ["Once upon a time there was a cat .", "The cat liked milk , and the dog liked bones .",
         "Lily saw the cat and the dog ; they played all day !"] * 20


def test_trained_bpe_round_trips_and_is_deterministic(tmp_path):
    a = TextTokenizer.train_bpe(TEXTS, 300)
    b = TextTokenizer.train_bpe(TEXTS, 300)
    assert a.eot_id == 0 and a.vocab_size <= 300
    ids = a.encode_batch(TEXTS[:3])
    assert [x.tolist() for x in ids] == [x.tolist() for x in b.encode_batch(TEXTS[:3])]
    assert a.decode_batch(ids) == TEXTS[:3]
    assert sum(x.size for x in ids) < sum(len(t.encode()) for t in TEXTS[:3])  # merges happened
    # unseen characters still round-trip (byte level)
    assert a.decode_batch(a.encode_batch(["Zoë's 🐱"])) == ["Zoë's 🐱"]
    flat, offsets = a.encode_documents(TEXTS[:3])
    assert offsets.tolist() == [0] + np.cumsum([x.size + 1 for x in ids]).tolist()
    assert all(flat[o - 1] == a.eot_id for o in offsets[1:])
    a.save(str(tmp_path / "tokenizer.json"))
    c = TextTokenizer.from_file(str(tmp_path))  # a folder holding tokenizer.json works too
    assert [x.tolist() for x in c.encode_batch(TEXTS[:3])] == [x.tolist() for x in ids]
    assert c.eot_id == a.eot_id


def test_local_tokenizer_file_errors(tmp_path):
    with pytest.raises(CollapseError):
        TextTokenizer.from_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CollapseError):
        TextTokenizer.from_file(str(bad))
    tok = TextTokenizer.train_bpe(TEXTS, 300)
    tok.save(str(tmp_path / "t.json"))
    with pytest.raises(CollapseError):
        TextTokenizer.from_file(str(tmp_path / "t.json"), eot_token="<|nope|>")
    assert END_OF_TEXT in json.loads((tmp_path / "t.json").read_text())["added_tokens"][0]["content"]
    with pytest.raises(CollapseError):
        TextTokenizer.train_bpe(TEXTS, 100)  # below bytes + end-of-text
