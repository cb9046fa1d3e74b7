"""Progress reports: tqdm on a terminal, plain periodic lines otherwise, nothing when disabled;
the transformer's training, sampling and BPE training report through them."""

import io

import numpy as np
import pytest

pytest.importorskip("torch", reason="collapse.transformer needs torch (collapse[torch])")

from collapse.transformer.progress import Progress  # noqa: E402


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_off_a_terminal():
    out = io.StringIO()
    with Progress("training", total=4, unit="step", interval=0.0, stream=out) as bar:
        for k in range(4):
            bar.update(1, loss=4.0 - k)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and "\r" not in out.getvalue()  # one per update (interval 0) and the final one
    assert lines[0].startswith("training: 1/4 step") and "loss 4" in lines[0]
    assert lines[-1].startswith("training: 4/4 step done") and "loss 1" in lines[-1]


def test_periodic_lines_only_every_interval():
    out = io.StringIO()
    with Progress("sampling", total=1000, unit="doc", interval=3600.0, stream=out) as bar:
        for _ in range(1000):
            bar.update(1)
    assert out.getvalue().splitlines() == [line for line in out.getvalue().splitlines() if "done" in line]
    assert len(out.getvalue().splitlines()) == 1


def test_a_bar_on_a_terminal_and_silence_when_disabled():
    term = _Terminal()
    with Progress("sampling", total=10, unit="doc", stream=term) as bar:
        bar.update(10)
    assert "\r" in term.getvalue() and "sampling:" in term.getvalue() and "/10 [" in term.getvalue()  # tqdm
    quiet = _Terminal()
    with Progress("sampling", total=10, unit="doc", enabled=False, stream=quiet) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_transformer_reports_training_sampling_and_bpe(capsys):
    from collapse.data.corpus import Corpus
    from collapse.transformer.family import TransformerFamily

    table = {"family": "transformer", "preset": "custom", "hidden_size": 16, "num_layers": 1, "num_heads": 2,
             "window_size": 8, "max_position_embeddings": 32, "context_length": 24, "epochs": 1, "batch_size": 8,
             "micro_batch_size": 8, "bpe_vocab_size": 300, "max_new_tokens": 8, "sample_batch_size": 4,
             "device": "cpu", "threads": 1}
    rng = np.random.default_rng(0)
    corpus = Corpus.from_texts([" ".join(rng.choice(["Tom", "saw", "a", "dog", "."], size=6)) for _ in range(30)])
    for progress, expect in ((True, True), (False, False)):
        family = TransformerFamily.from_config({**table, "progress": progress})
        family.prepare(corpus)
        family.fit(corpus, seed=0).sample(6, seed=1)
        err = capsys.readouterr().err
        for what in ("BPE training: 30/30 doc done", "training: ", "sampling: 6/6 doc done"):
            assert (what in err) == expect, (what, err)
    with pytest.raises(ValueError):
        TransformerFamily.from_config({**table, "progress": "yes"})
