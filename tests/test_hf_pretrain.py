"""make-tiny --pretrain-stories: a pretrained tiny folder is actually pretrained.

The folder's weights, trained by the hf family's own fit on grammar stories of the
pretraining seed, must score stories of another seed (what a study's data would be) better
than the same random model before pretraining; scored by transformers itself, not by our code.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from collapse.data.storygrammar import sample_stories  # noqa: E402
from collapse.errors import CollapseError  # noqa: E402
from collapse.hf.__main__ import main as hf_main  # noqa: E402
from collapse.hf.model import folder_tokenizer  # noqa: E402
from collapse.hf.tiny import grammar_tokenizer, make_tiny  # noqa: E402


def transformers_perplexity(folder: str, texts) -> float:
    """exp(token-weighted mean NLL) of each text after an end-of-text token (the first 100
    tokens: the tiny model's positions), by transformers."""
    tok = folder_tokenizer(folder, None)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for ids in tok.encode_batch(list(texts)):
            row = torch.tensor([[tok.eot_id, *ids.tolist(), tok.eot_id][:101]])
            logits = model(row).logits[0, :-1].float()
            nll += float(torch.nn.functional.cross_entropy(logits, row[0, 1:], reduction="sum"))
            count += row.shape[1] - 1
    return math.exp(nll / count)


def test_pretrained_folder_scores_grammar_stories_better_than_the_random_one(tmp_path):
    tok = grammar_tokenizer(vocab_size=300, documents=300)
    kw = dict(hidden_size=32, layers=2, heads=4, positions=128, tokenizer=tok, seed=5)
    random_folder = make_tiny(str(tmp_path / "random"), "gpt2", **kw)
    pretrained = make_tiny(str(tmp_path / "pretrained"), "gpt2", pretrain_stories=120, pretrain_epochs=2,
                           pretrain_settings=dict(lr=1e-2, batch_size=8, micro_batch_size=8, threads=1),
                           pretrain_seed=11, **kw)
    stories = list(sample_stories(40, 12345).texts())  # not the pretraining seed's stories
    ppl_random = transformers_perplexity(random_folder, stories)
    ppl_pretrained = transformers_perplexity(pretrained, stories)
    # the random init is near uniform over the 300 tokens; pretraining must land far below it
    assert ppl_random > 150
    assert ppl_pretrained < 0.25 * ppl_random, (ppl_random, ppl_pretrained)
    # the same tokenizer and config: only the weights changed
    assert open(tmp_path / "random" / "tokenizer.json").read() == open(tmp_path / "pretrained" / "tokenizer.json").read()


def test_bad_pretraining_settings_are_one_line(tmp_path, capsys):
    with pytest.raises(CollapseError, match="pretrain epochs must be a positive integer"):
        make_tiny(str(tmp_path / "a"), "gpt2", tokenizer=grammar_tokenizer(300, 100), pretrain_stories=10,
                  pretrain_epochs=0)
    assert not (tmp_path / "a").exists()
    assert hf_main(["make-tiny", str(tmp_path / "b"), "--pretrain-stories", "-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pretrain stories must be a positive integer" in err
