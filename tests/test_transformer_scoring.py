"""The transformer's document log-probability (the loop's common scale) and the paper's
perplexity, against a full forward and transformers' GPTNeoForCausalLM on the same weights."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
transformers = pytest.importorskip("transformers", reason="parity tests need transformers (test extra)")

from collapse.transformer import GPTNeo, GPTNeoConfig  # noqa: E402
from collapse.transformer.generate import SamplingConfig  # noqa: E402
from collapse.errors import CollapseError  # noqa: E402
from collapse.transformer.score import (  # noqa: E402
    document_log_probs, paper_perplexity, paper_perplexity_per_story, sliding_window_nll)

V, EOT, POSITIONS = 50, 0, 32


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(7)
    ours = GPTNeo(GPTNeoConfig(vocab_size=V, max_position_embeddings=POSITIONS, hidden_size=32, num_layers=2,
                               num_heads=4, window_size=8, bos_token_id=EOT, eos_token_id=EOT)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # uneven distributions, so every term matters
    folder = tmp_path_factory.mktemp("gptneo")
    ours.save_pretrained(str(folder))
    hf = transformers.GPTNeoForCausalLM.from_pretrained(str(folder)).eval()
    yield ours, hf
    torch.set_num_threads(n)


def _docs(lengths, seed=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, V, size=k) for k in lengths]  # no end-of-text inside a document


def _full_forward_logprob(logits_of, doc):
    seq = torch.tensor([[EOT, *doc.tolist(), EOT]])
    with torch.no_grad():
        logp = torch.log_softmax(logits_of(seq)[0].double(), -1)
    return float(logp[torch.arange(seq.size(1) - 1), seq[0, 1:]].sum())


def test_document_log_probs_equal_full_forward_and_transformers(models):
    ours, hf = models
    docs = _docs([0, 1, 5, 17, 30, 3, 12, 29])  # mixed lengths share padded batches; 30 + 2 = all positions
    got = document_log_probs(ours, docs, EOT, batch_size=3)
    for i, doc in enumerate(docs):
        assert got[i] == pytest.approx(_full_forward_logprob(ours, doc), abs=1e-6, rel=1e-6)
        assert got[i] == pytest.approx(_full_forward_logprob(lambda x: hf(x).logits, doc), abs=1e-4, rel=1e-5)
    # an empty document is just p(end-of-text | end-of-text)
    with torch.no_grad():
        first = torch.log_softmax(ours(torch.tensor([[EOT]]))[0, -1].double(), -1)[EOT]
    assert got[0] == pytest.approx(float(first), abs=1e-6)


def test_document_longer_than_the_positions_is_scored_by_the_sliding_window(models):
    ours, _ = models
    (doc,) = _docs([75], seed=9)
    got = document_log_probs(ours, [doc], EOT, stride=8)[0]
    stream = np.concatenate([[EOT], doc, [EOT]])
    assert got == pytest.approx(-sliding_window_nll(ours, stream, max_length=POSITIONS, stride=8).nll_sum)
    assert math.isfinite(got) and got < 0


def _evaluate_ppl_with_transformers(hf, ids, stride):
    """The loop of the paper's evaluate_ppl.py, with transformers' model and its labels."""
    ids = torch.tensor(ids)[None, :]
    max_length, seq_len = hf.config.max_position_embeddings, ids.size(1)
    nlls, prev_end = [], 0
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        trg_len = end - prev_end
        inputs = ids[:, begin:end]
        targets = inputs.clone()
        targets[:, :-trg_len] = -100
        with torch.no_grad():
            nlls.append(hf(inputs, labels=targets).loss)
        prev_end = end
        if end == seq_len:
            break
    return float(torch.exp(torch.stack(nlls).mean()))


@pytest.mark.parametrize("length,stride", [(150, 12), (150, 31), (20, 512), (97, 40)])
def test_paper_perplexity_is_evaluate_ppl_on_transformers(models, length, stride):
    ours, hf = models
    ids = np.random.default_rng(length + stride).integers(0, V, size=length)
    got = paper_perplexity(ours, ids, stride=stride)
    assert got.perplexity == pytest.approx(_evaluate_ppl_with_transformers(hf, ids, stride), rel=1e-5)
    if stride < POSITIONS:  # every token but the first is scored exactly once
        assert sum(got.window_tokens) == length - 1
    else:  # windows further apart than their length skip tokens, in the script as here
        assert sum(got.window_tokens) <= length - 1


def test_paper_perplexity_differs_from_the_token_weighted_mean(models):
    """The script averages the windows' means: a short last window weighs like a full one,
    so it is not exp(total NLL / tokens) (what ours per story reports)."""
    ours, _ = models
    ids = np.random.default_rng(1).integers(0, V, size=140)
    got = paper_perplexity(ours, ids, stride=16)
    weighted = math.exp(sum(m * k for m, k in zip(got.window_mean_nll, got.window_tokens)) / sum(got.window_tokens))
    assert got.window_tokens[-1] < got.window_tokens[1]
    assert got.perplexity != pytest.approx(weighted, rel=1e-9)


def _per_story_ppl_with_transformers(hf, stories, stride):
    """The current evaluate_ppl.py with transformers' model: each story on its own, its
    windows' losses weighted by the tokens they score, exp(summed NLL / scored tokens)."""
    max_length, total, count = hf.config.max_position_embeddings, 0.0, 0
    for story in stories:
        ids = torch.tensor(story)[None, :]
        prev_end, seq_len = 0, ids.size(1)
        for begin in range(0, seq_len, stride):
            end = min(begin + max_length, seq_len)
            targets = ids[:, begin:end].clone()
            targets[:, :-(end - prev_end)] = -100
            scored = int((targets[:, 1:] != -100).sum())  # labels are shifted inside the model
            if scored:  # (a one-token story: the script's loss is nan and weighs nothing)
                with torch.no_grad():
                    total += float(hf(ids[:, begin:end], labels=targets).loss) * scored
            count += scored
            prev_end = end
            if end == seq_len:
                break
    return math.exp(total / count)


@pytest.mark.parametrize("stride", [12, 31, 512])
def test_paper_perplexity_per_story_is_current_evaluate_ppl_on_transformers(models, stride):
    """Short stories batched together (right-padded), long ones by evaluate_ppl's windows
    inside the story; a one-token story scores nothing and changes nothing."""
    ours, hf = models
    stories = _docs([5, 31, 32, 1, 90, 17, 150, 2], seed=11)
    got = paper_perplexity_per_story(ours, stories, stride=stride, batch_size=3)
    assert got.perplexity == pytest.approx(_per_story_ppl_with_transformers(hf, stories, stride), rel=1e-5)
    if stride < POSITIONS:  # every token but each story's first is scored exactly once
        assert got.num_tokens == sum(len(q) - 1 for q in stories)
    # without the one-token stories the batches hold other rows (other padding), so float32
    # sums differ in their last bits (5e-9 seen); one scored token more or less would move
    # the perplexity by ~0.3 %
    assert got.perplexity == pytest.approx(paper_perplexity_per_story(ours, [q for q in stories if len(q) > 1],
                                                                      stride=stride).perplexity, rel=1e-7)


def test_paper_perplexity_per_story_differs_from_joined(models):
    """Joining stories lets a story see the previous ones as context and weighs windows,
    not tokens: the two versions of the script give different numbers on the same text."""
    ours, _ = models
    stories = _docs([20, 25, 9, 30], seed=5)
    per_story = paper_perplexity_per_story(ours, stories, stride=16).perplexity
    joined = paper_perplexity(ours, np.concatenate(stories), stride=16).perplexity
    assert per_story != pytest.approx(joined, rel=1e-6)
    with pytest.raises(CollapseError, match="no token to score"):
        paper_perplexity_per_story(ours, [np.array([3]), np.array([], dtype=np.int64)])


def test_sampling_defaults_are_the_papers():
    """train_33m.py: generate(do_sample=True, top_k=0, max_new_tokens=600) at temperature 1,
    no nucleus; our prompt is the end-of-text token alone (generate.generate_batch)."""
    cfg = SamplingConfig()
    assert (cfg.temperature, cfg.top_k, cfg.top_p, cfg.max_new_tokens) == (1.0, 0, 1.0, 600)
    from collapse.transformer.family import TransformerFamily

    family = TransformerFamily.from_config({"family": "transformer", "preset": "tinystories-1m"})
    s = family.sampling
    assert (s.temperature, s.top_k, s.top_p, s.max_new_tokens) == (1.0, 0, 1.0, 600)


def test_paper_perplexity_option_reports_paper_ppl():
    """paper_perplexity = true or "per-story": the family's extra metric is the current
    evaluate_ppl's number (each held-out story on its own); "joined": the older one (the
    stories joined by blank lines); the model's positions are the window either way."""
    from collapse.data.corpus import Corpus
    from collapse.transformer.family import TransformerFamily

    table = {"family": "transformer", "preset": "custom", "hidden_size": 16, "num_layers": 1, "num_heads": 2,
             "window_size": 8, "max_position_embeddings": 32, "context_length": 24, "epochs": 1, "batch_size": 8,
             "micro_batch_size": 8, "bpe_vocab_size": 280, "perplexity_stride": 8, "device": "cpu", "threads": 1,
             "progress": False}
    rng = np.random.default_rng(0)
    corpus = Corpus.from_texts([" ".join(rng.choice(["Tom", "saw", "a", "dog", "."], size=8)) for _ in range(30)])
    held = Corpus.from_texts([" ".join(rng.choice(["Tom", "saw", "a", "dog", "."], size=8)) for _ in range(6)])
    model = TransformerFamily.from_config({**table, "paper_perplexity": "joined"}).fit(corpus, seed=0)
    stream = model.tokenizer.encode_batch(["\n\n".join(held.texts())])[0]
    assert model.extra_metrics(held)["paper_ppl"] == pytest.approx(
        paper_perplexity(model.model, stream, max_length=POSITIONS, stride=8).perplexity)
    per_story = paper_perplexity_per_story(model.model, model.tokenizer.encode_batch(held.texts()),
                                           max_length=POSITIONS, stride=8).perplexity
    for setting in (True, "per-story"):
        model.family = TransformerFamily.from_config({**table, "paper_perplexity": setting})
        assert model.extra_metrics(held)["paper_ppl"] == pytest.approx(per_story)
    assert TransformerFamily.from_config(table).fit(corpus, seed=0).extra_metrics(held) == {}
    with pytest.raises(CollapseError, match="paper_perplexity must be"):
        TransformerFamily.from_config({**table, "paper_perplexity": "stories"})
