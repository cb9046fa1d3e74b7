"""Fuzz target: run config TOML -> load_config -> cells -> to_toml -> parsed again: the same cells."""

from __future__ import annotations

import sys

import harness

try:  # the package layout of issue 9, then the one before it
    from collapse.experiment.config import load_config, to_toml
except ImportError:  # pragma: no cover
    from collapse.config import load_config, to_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib



def test_one_input(data: bytes) -> None:
    cfg = load_config(harness.write("run.toml", data))
    cells = cfg.cells()
    text = to_toml(cfg)
    again = load_config(tomllib.loads(text))
    assert again.cells() == cells, (cells[:3], again.cells()[:3])


if __name__ == "__main__":
    harness.run(test_one_input)
