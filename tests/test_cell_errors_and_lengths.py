"""Issue 26: an unexpected error in one cell ends that cell (with its type and message) and the
study goes on, and --resume retries it; sample lengths (mean_length, truncated_fraction) for
every family, with a warning when samples hit the length limit; progress lines without NaN."""

import json

import numpy as np
import pytest

import collapse
from collapse.data.storygrammar import get_grammar
from collapse.experiment import loop
from collapse.experiment.config import parse_config
from collapse.ngram.model import NGramModel


def _study(generations=3):
    return {"experiment": {"generations": generations, "paradigms": ["replace", "accumulate"], "workers": 1,
                           "progress": False},
            "data": {"source": "grammar", "num_documents": 150, "heldout_documents": 30},
            "model": {"order": 2}}


class _FailingFit:
    """A family whose fit of anything but the real corpus raises ``error`` (generation 1 on)."""

    def __init__(self, inner, error):
        self.inner, self.error, self.fits = inner, error, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def fit(self, corpus, *, seed, context=None):
        self.fits += 1
        if self.fits > 1 or corpus.num_documents != 150:
            raise self.error
        return self.inner.fit(corpus, seed=seed, context=context)


def _failing_replace(monkeypatch, error):
    make = loop.make_family

    def make_family(cfg, cell):
        family = make(cfg, cell)
        return _FailingFit(family, error) if cell.paradigm == "replace" else family

    monkeypatch.setattr(loop, "make_family", make_family)


def test_an_oserror_ends_one_cell_and_the_study_goes_on(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _failing_replace(monkeypatch, OSError(28, "No space left on device"))
    df = collapse.run_experiment(parse_config(_study()), out=str(out))
    reason = "OSError: [Errno 28] No space left on device"
    assert f"[replace_o2_s0] ended early at generation 1: {reason}" in capsys.readouterr().err
    ended = df[df.status == "ended"]
    assert ended[["paradigm", "generation", "reason"]].values.tolist() == [["replace", 1, reason]]
    assert list(df[(df.status == "ok") & (df.paradigm == "accumulate")].generation) == [0, 1, 2, 3]
    state = json.loads((out / "replace_o2_s0" / "state.json").read_text())
    assert state["status"] == "ended" and state["retry"] is True
    assert "OSError" in "".join(state["traceback"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cells_ended_early"] == 1 and manifest["complete"]

    # the error was not the seeds' doing: --resume retries the cell from its last commit
    monkeypatch.undo()
    resumed = collapse.run_experiment(parse_config(_study()), out=str(out), resume=True)
    assert (resumed.status == "ok").all()
    assert list(resumed[resumed.paradigm == "replace"].generation) == [0, 1, 2, 3]
    fresh = collapse.run_experiment(parse_config(_study()), out=str(tmp_path / "fresh"))
    cols = ["paradigm", "generation", "heldout_ppl", "vocab_size", "mean_length"]
    assert resumed[cols].values.tolist() == fresh[cols].values.tolist()


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory"), FileNotFoundError(2, "gone", "/x/work")])
def test_other_unexpected_errors_end_the_cell_too(tmp_path, monkeypatch, error):
    _failing_replace(monkeypatch, error)
    df = collapse.run_experiment(parse_config(_study(1)), out=str(tmp_path / "run"))
    reason = df[df.status == "ended"].reason.tolist()
    assert len(reason) == 1 and reason[0].startswith(type(error).__name__ + ": "), reason
    assert (df[df.paradigm == "accumulate"].status == "ok").sum() == 2


def test_keyboard_interrupt_still_stops_the_run(tmp_path, monkeypatch):
    _failing_replace(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        collapse.run_experiment(parse_config(_study(1)), out=str(tmp_path / "run"))


def test_ngram_samples_mark_the_documents_cut_at_max_length():
    texts = get_grammar().texts(200, seed=1)
    model = NGramModel.fit(collapse.Corpus.from_texts(texts), order=2)
    full = model.sample(300, seed=5)
    cut = model.sample(300, seed=5, max_length=6)
    assert full.truncated.sum() == 0
    # the same streams: a document is cut exactly when the unlimited one has >= 6 words
    assert np.array_equal(cut.truncated, full.lengths() >= 6)
    assert 0 < cut.truncated.mean() < 1
    # the flags follow the documents through select (the filters) and concatenate
    picked = cut.select(np.array([4, 0, 4]))
    assert picked.truncated.tolist() == [cut.truncated[4], cut.truncated[0], cut.truncated[4]]
    both = collapse.concatenate([cut, full])
    assert both.truncated.tolist() == cut.truncated.tolist() + full.truncated.tolist()


def test_progress_lines_show_lengths_and_omit_nan(tmp_path, capsys):
    path = tmp_path / "c.txt"
    path.write_text("".join(t + "\n" for t in get_grammar().texts(300, seed=42)))
    raw = {"experiment": {"generations": 1, "paradigms": ["replace"], "workers": 1, "progress": True},
           "data": {"source": "file", "path": str(path), "num_documents": 200},
           "model": {"order": 2}}
    df = collapse.run_experiment(parse_config(raw), out=str(tmp_path / "run"))
    assert df.kl_truth.isna().all()  # file data: no exact source
    assert np.allclose(df.mean_length, df.synthetic_tokens / df.synthetic_documents)
    assert (df.truncated_fraction == 0).all()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if " gen " in ln]
    assert len(lines) == 2, lines
    for ln in lines:
        assert "nan" not in ln and "kl_truth" not in ln, ln
        assert "bits/word=" in ln and "mean_length=" in ln and "truncated=0.0%" in ln, ln


TRANSFORMER = {
    "family": "transformer", "preset": "custom", "hidden_size": 16, "num_layers": 1, "num_heads": 2,
    "window_size": 8, "max_position_embeddings": 64, "context_length": 48, "epochs": 1, "batch_size": 16,
    "micro_batch_size": 16, "lr": 3e-3, "bpe_vocab_size": 300, "max_new_tokens": 6, "sample_batch_size": 64,
    "perplexity_stride": 24, "device": "cpu", "threads": 1, "progress": False,
}


def test_transformer_samples_cut_at_max_new_tokens_are_counted_and_warned(tmp_path, capsys):
    pytest.importorskip("torch")
    raw = {"experiment": {"generations": 1, "paradigms": ["replace"], "workers": 1, "progress": True},
           "data": {"source": "grammar", "num_documents": 100, "heldout_documents": 20},
           "model": TRANSFORMER}
    df = collapse.run_experiment(parse_config(raw), out=str(tmp_path / "run"))
    err = capsys.readouterr().err
    # grammar stories are far longer than 6 BPE tokens: nearly every sample is cut
    assert (df.truncated_fraction > 0.9).all(), df.truncated_fraction.tolist()
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warnings) == 2, err  # once per generation of the cell
    assert "hit max_new_tokens = 6 (BPE tokens)" in warnings[0]
    assert "truncated=" in err

    # the flags are exactly the stories that drew no end-of-text
    from collapse.transformer.family import TransformerFamily

    family = TransformerFamily.from_config({**TRANSFORMER, "max_new_tokens": 12})
    texts = get_grammar().texts(60, seed=3)
    model = family.fit(collapse.Corpus.from_texts(texts), seed=0)
    ids = model.sample_token_ids(40, seed=9)
    corpus = model.sample(40, seed=9)
    assert corpus.truncated.tolist() == [len(x) == 12 for x in ids]
