"""The transformer family through the loop's protocol: fit / sample / perplexity / save / load."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

from collapse.data.corpus import Corpus  # noqa: E402
from collapse.errors import CollapseError  # noqa: E402
from collapse.experiment.family import ModelFamily, TrainedModel  # noqa: E402
from collapse.transformer.family import TransformerFamily  # noqa: E402

TINY = {"family": "transformer", "preset": "custom", "hidden_size": 32, "num_layers": 2, "num_heads": 4,
        "window_size": 16, "max_position_embeddings": 64, "context_length": 48, "epochs": 8,
        "batch_size": 8, "micro_batch_size": 4, "lr": 3e-3, "bpe_vocab_size": 300,
        "max_new_tokens": 40, "sample_batch_size": 8, "perplexity_stride": 16, "device": "cpu", "threads": 1}


def _stories(n, seed):
    rng = np.random.default_rng(seed)
    names, verbs, things = ["Tom", "Lily", "Sam", "Mia"], ["saw", "liked", "found", "had"], ["a dog", "the ball",
                                                                                              "a red car", "a cake"]
    docs = []
    for _ in range(n):
        k = rng.integers(1, 4)
        docs.append(" ".join(f"{rng.choice(names)} {rng.choice(verbs)} {rng.choice(things)} ." for _ in range(k)))
    return Corpus.from_texts(docs)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    family = TransformerFamily.from_config(dict(TINY))
    return family, family.fit(_stories(120, 0), seed=1)


def test_protocol_fit_sample_perplexity(trained):
    family, model = trained
    assert isinstance(family, ModelFamily) and isinstance(model, TrainedModel)
    assert model.stats.steps > 0 and model.stats.losses[-1] < model.stats.losses[0] - 1.0  # it learned
    held_out = _stories(30, 99)
    ppl = model.perplexity(held_out)
    assert 1.0 < ppl < 30.0  # far below the 300-token vocabulary: the grammar was learned
    sample = model.sample(20, seed=4, threads=1)
    assert isinstance(sample, Corpus) and sample.num_documents == 20
    assert sample.num_tokens > 0
    words = set(sample.vocab.words[3:])
    assert {"Tom", "Lily", "."} & words  # decoded text, split on whitespace
    d = family.describe()
    assert d["family"] == "transformer" and d["train"]["lr"] == 3e-3


def test_sample_is_the_decoded_texts_split_on_whitespace(trained, monkeypatch):
    """sample() builds its Corpus with Corpus.from_texts: the words of whitespace_tokenize, and,
    for a family that uses_source_text, the decoded texts themselves (kept aligned)."""
    from collapse.data.corpus import Vocab, whitespace_tokenize

    family, model = trained
    decoded = model.tokenizer.decode_batch(model.sample_token_ids(12, seed=5, threads=1))
    sample = model.sample(12, seed=5, threads=1)
    reference = Corpus.from_documents((whitespace_tokenize(t) for t in decoded), vocab=Vocab())
    assert np.array_equal(sample.tokens, reference.tokens) and np.array_equal(sample.offsets, reference.offsets)
    assert sample.vocab == reference.vocab and not sample.has_source_text
    assert sample.truncated is not None and sample.truncated.shape == (12,)
    monkeypatch.setattr(family, "uses_source_text", True)
    kept = model.sample(12, seed=5, threads=1)
    assert kept.document_texts() == decoded and np.array_equal(kept.tokens, sample.tokens)


def test_same_seed_same_outputs(trained):
    family, model = trained
    corpus = _stories(120, 0)
    again = TransformerFamily.from_config(dict(TINY)).fit(corpus, seed=1)
    for a, b in zip(model.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    s1, s2 = model.sample(10, seed=7), again.sample(10, seed=7)
    assert list(s1.texts()) == list(s2.texts())
    assert list(s1.texts()) != list(model.sample(10, seed=8).texts())


def test_save_load_round_trip(trained, tmp_path):
    family, model = trained
    model.save(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["collapse_transformer.json", "config.json", "model.safetensors", "tokenizer.json"]
    assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == model.tokenizer.vocab_size
    held_out = _stories(10, 5)
    for loaded in (family.load(tmp_path), TransformerFamily.load(tmp_path)):
        assert loaded.perplexity(held_out) == pytest.approx(model.perplexity(held_out), rel=1e-6)
        assert list(loaded.sample(6, seed=2).texts()) == list(model.sample(6, seed=2).texts())


def test_loaded_tokenizer_is_kept_for_later_generations(trained, tmp_path):
    family, model = trained
    model.save(tmp_path)
    fresh = TransformerFamily.from_config(dict(TINY))
    fresh.load(tmp_path)  # what a resumed run does first
    assert fresh.tokenizer_for(_stories(5, 3)) is not None
    assert fresh._tokenizer.vocab_size == model.tokenizer.vocab_size


def test_prepare_fixes_the_tokenizer_before_any_fit():
    real, synthetic = _stories(60, 0), Corpus.from_texts(["zz qq xx"] * 30)
    a = TransformerFamily.from_config(dict(TINY))
    a.prepare(real)
    b = TransformerFamily.from_config(dict(TINY))
    b.prepare(real)
    # a resumed run that restarts on synthetic data still gets generation 0's tokenizer
    assert a.tokenizer_for(synthetic).encode_batch(["Lily saw a dog ."])[0].tolist() == \
        b.tokenizer_for(real).encode_batch(["Lily saw a dog ."])[0].tolist()
    c = TransformerFamily.from_config(dict(TINY))
    assert c.tokenizer_for(synthetic).encode_batch(["Lily saw a dog ."])[0].tolist() != \
        a.tokenizer_for(synthetic).encode_batch(["Lily saw a dog ."])[0].tolist()


def test_document_log_probs_match_sliding_window_sum(trained):
    family, model = trained
    docs = _stories(7, 3)
    lp = model.document_log_probs(docs)
    assert lp.shape == (7,) and np.all(lp < 0)
    # the same numbers one document at a time through the sliding-window scorer
    from collapse.transformer.score import sliding_window_nll

    eot = model.tokenizer.eot_id
    for i, ids in enumerate(model.tokenizer.encode_batch(list(docs.texts()))):
        stream = np.concatenate([[eot], ids, [eot]])
        ref = sliding_window_nll(model.model, stream, max_length=48, stride=16).nll_sum
        assert lp[i] == pytest.approx(-ref, rel=1e-5)
    # longer than the 48-token context: scored by the sliding window, still finite
    long_doc = Corpus.from_texts([" ".join(["Tom saw a dog ."] * 20)])
    assert np.isfinite(model.document_log_probs(long_doc)).all()


def test_bad_config_is_a_value_error():
    with pytest.raises(CollapseError):
        TransformerFamily.from_config({**TINY, "hiden_size": 3})
    with pytest.raises(CollapseError):
        TransformerFamily.from_config({**TINY, "preset": "gpt-5"})
    with pytest.raises(ValueError):
        TransformerFamily.from_config({**TINY, "hidden_size": 30})
    with pytest.raises(ValueError):
        TransformerFamily.from_config({**TINY, "top_p": 2.0})
    with pytest.raises(CollapseError):
        TransformerFamily.from_config({**TINY, "tokenizer": "/nonexistent/tokenizer.json"})


def test_three_generations_and_a_resume_give_the_same_results(tmp_path):
    """The loop's use in miniature: M_t = fit(S_{t-1}), S_t = M_t.sample; a resumed run
    (fresh family, prepare(real), then fit on the saved S_1 read back as text) ends with
    the same model, samples and perplexities as the uninterrupted run."""
    cfg = {**TINY, "epochs": 2}
    real, held_out = _stories(80, 0), _stories(20, 1)

    def generation(family, train, t):
        model = family.fit(train, seed=100 + t)
        return model, model.sample(40, seed=200 + t), model.perplexity(held_out)

    family = TransformerFamily.from_config(dict(cfg))
    family.prepare(real)
    train, results = real, []
    for t in range(3):
        model, synth, ppl = generation(family, train, t)
        results.append((model, list(synth.texts()), ppl))
        (tmp_path / f"S{t}.txt").write_text("\n".join(synth.texts()) + "\n")
        train = synth
    assert all(np.isfinite(r[2]) for r in results)
    # resume after generation 1: a new process knows only the config, R and the saved S_1
    resumed = TransformerFamily.from_config(dict(cfg))
    resumed.prepare(real)
    s1 = Corpus.from_texts((tmp_path / "S1.txt").read_text().split("\n")[:-1])
    model2, synth2, ppl2 = generation(resumed, s1, 2)
    for a, b in zip(results[2][0].model.state_dict().values(), model2.model.state_dict().values()):
        assert torch.equal(a, b)
    assert list(synth2.texts()) == results[2][1] and ppl2 == results[2][2]
