"""The Ray executor gives exactly the local executor's results (a small real local Ray)."""

import numpy as np
import pandas as pd
import pytest

import collapse

ray = pytest.importorskip("ray", reason="ray is not installed (the 'ray' extra)")


def test_ray_matches_local():
    kw = dict(p0="zipf", K=200, N=150, generations=15, trials=37, paradigm="accumulate-subsample", seed=21)
    local = collapse.simulate(**kw, threads=2)
    # starts and stops its own 2-CPU instance; 5 uneven chunks exercise the trial offsets
    remote = collapse.simulate(**kw, executor="ray", chunks=5)
    pd.testing.assert_frame_equal(local.metrics, remote.metrics)
    pd.testing.assert_frame_equal(local.events, remote.events)
    assert np.array_equal(local.final_p, remote.final_p)
    assert not ray.is_initialized()
