"""Typos in a config (issue 26): unknown keys and tables get a "did you mean" from the known
ones, and a typo in a single [model] transformer table is refused before anything is
written, so the corrected config then runs in the same --out."""

import subprocess
import sys

import pytest

from collapse.experiment.config import ConfigError, parse_config

GRAMMAR = {"source": "grammar", "num_documents": 40, "heldout_documents": 10}


def _cfg(**tables):
    return {"experiment": {"generations": 1, "progress": False}, "data": dict(GRAMMAR), **tables}


@pytest.mark.parametrize("raw,message", [
    (_cfg(model={"family": "ngram", "smothing": "mkn"}), "model.smothing: unknown key (did you mean 'smoothing'?)"),
    (_cfg(data={**GRAMMAR, "heldout_documnets": 5}),
     "data.heldout_documnets: unknown key (did you mean 'heldout_documents'?)"),
    ({"experimnt": {}}, "experimnt: unknown table (did you mean 'experiment'?) (choose from"),
    (_cfg(filter={"method": "perplexity", "keep_fractons": [0.5]}),
     "filter.keep_fractons: unknown key (did you mean 'keep_fractions'?)"),
    (_cfg(output={"zzz": 1}), "output.zzz: unknown key"),  # nothing close: no guess
])
def test_unknown_keys_get_a_did_you_mean(raw, message):
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    assert str(e.value).startswith(message), str(e.value)
    if "zzz" in message:
        assert "did you mean" not in str(e.value)


TRANSFORMER = """
[experiment]
generations = 1
paradigms = ["replace"]
workers = 1
progress = false

[data]
source = "grammar"
num_documents = 40
heldout_documents = 10

[model]
family = "transformer"
preset = "custom"
HIDDEN = 32
num_layers = 1
num_heads = 4
window_size = 8
max_position_embeddings = 64
context_length = 48
epochs = 1
batch_size = 16
micro_batch_size = 16
bpe_vocab_size = 300
max_new_tokens = 40
sample_batch_size = 40
perplexity_stride = 48
device = "cpu"
threads = 1
"""


def test_single_transformer_table_is_checked_before_anything_is_written(tmp_path):
    pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
    config, out = tmp_path / "c.toml", tmp_path / "run"

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "collapse", "run", str(config), "--out", str(out), *extra],
                              capture_output=True, text=True)

    config.write_text(TRANSFORMER.replace("HIDDEN", "hiden_size"))
    proc = run()
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert not out.exists()  # no run directory, config.toml or manifest left behind
    assert "model.hiden_size: unknown model setting 'hiden_size' (did you mean 'hidden_size'?)" in lines[0]
    config.write_text(TRANSFORMER.replace("HIDDEN", "hidden_size"))
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert (out / "config.toml").exists() and (out / "manifest.json").exists()


def test_tokenizer_format_is_checked_at_parse_time():
    pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
    raw = _cfg(model={"family": "transformer", "preset": "custom", "hidden_size": 32, "num_layers": 1,
                      "num_heads": 4, "tokenizer_format": "paragraph"})
    with pytest.raises(ConfigError, match=r"^model\.tokenizer_format: .* got 'paragraph'"):
        parse_config(raw)
    raw["model"]["tokenizer_format"] = "paragraphs"
    assert parse_config(raw).model.transformer["tokenizer_format"] == "paragraphs"
