"""[[model]] studies: parsing, errors naming the table and field, cells and their ids."""

import pytest

from collapse.experiment.config import parse_config, to_toml
from collapse.errors import CollapseError

TINY_NEO = {"family": "transformer", "preset": "custom", "hidden_size": 32, "num_layers": 2, "num_heads": 4,
            "window_size": 16, "max_position_embeddings": 64, "context_length": 48, "device": "cpu"}


def _cfg(models, **experiment):
    return {"experiment": {"generations": 2, "seeds": [0, 1], "paradigms": ["replace", "accumulate-subsample"],
                           **experiment},
            "data": {"source": "grammar", "num_documents": 50, "heldout_documents": 10},
            "model": models}


def test_model_array_gives_cells_per_model_paradigm_and_seed():
    pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
    cfg = parse_config(_cfg([{"name": "tri", "family": "ngram", "order": 3},
                             {"name": "neo", **TINY_NEO}]))
    assert [m.name for m in cfg.models] == ["tri", "neo"] and cfg.multi_model
    cells = cfg.cells()
    assert len(cells) == 2 * 2 * 2
    assert {c.id for c in cells} == {f"{m}_{p}{o}_s{s}" for m, o in (("tri", "_o3"), ("neo", ""))
                                     for p in ("replace", "accumulate-subsample") for s in (0, 1)}
    # generation 0 depends on the model, its order and the seed: 4 groups of 2 paradigms
    assert len({c.generation0_key for c in cells}) == 4
    # the resolved config round-trips through TOML as a [[model]] array
    import tomllib

    again = parse_config(tomllib.loads(to_toml(cfg)))
    assert to_toml(again) == to_toml(cfg) and [m.name for m in again.models] == ["tri", "neo"]


def test_single_model_table_keeps_working_named_after_its_family():
    cfg = parse_config(_cfg({"family": "ngram", "order": 3}))
    assert cfg.model.name == "ngram" and not cfg.multi_model
    assert cfg.cells()[0].id == "replace_o3_s0"  # ids of single-model runs are unchanged
    assert "[model]\nfamily = \"ngram\"" in to_toml(cfg) and "[[model]]" not in to_toml(cfg)


@pytest.mark.parametrize("models,field,message", [
    ([{"name": "a", "family": "ngram", "smothing": "mkn"}], "model[0].smothing", "unknown key"),
    ([{"name": "a", "family": "ngram"}, {"name": "a", "family": "ngram", "order": 2}], "model[1].name",
     "duplicate name 'a'"),
    ([{"name": "a", "family": "ngram", "orders": [3, 0]}], "model[0].orders[1]", ">= 1"),
    ([{"name": "has space", "family": "ngram"}], "model[0].name", "without spaces"),
    ([{"name": "a", "family": "gpt"}], "model[0].family", "unknown value 'gpt'"),
    ([], "model", "empty"),
])
def test_errors_name_the_table_and_field(models, field, message):
    with pytest.raises(CollapseError) as e:
        parse_config(_cfg(models))
    assert str(e.value).startswith(field + ":"), str(e.value)
    assert message in str(e.value)


@pytest.mark.parametrize("override,field", [
    ({"hidden_size": 30}, "model[1].hidden_size"),      # not divisible by num_heads
    ({"hidden_size": -1}, "model[1].hidden_size"),
    ({"hiden_size": 64}, "model[1].hiden_size"),        # unknown setting
    ({"top_p": 2.0}, "model[1].top_p"),
    ({"epochs": 0}, "model[1].epochs"),
    ({"progress": "yes"}, "model[1].progress"),
])
def test_transformer_settings_errors_name_the_field(override, field):
    pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
    with pytest.raises(CollapseError) as e:
        parse_config(_cfg([{"name": "tri", "family": "ngram"}, {"name": "neo", **TINY_NEO, **override}]))
    assert str(e.value).startswith(field + ":"), str(e.value)


def test_cli_reports_a_bad_model_table_in_one_line(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "bad.toml"
    cfg.write_text('[experiment]\ngenerations = 1\n[[model]]\nname = "a"\nfamily = "ngram"\n'
                   '[[model]]\nname = "b"\nfamily = "ngram"\nordr = 3\n')
    proc = subprocess.run([sys.executable, "-m", "collapse", "run", str(cfg), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "model[1].ordr" in proc.stderr
