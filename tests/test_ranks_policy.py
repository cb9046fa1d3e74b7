"""Where transformer cells run: never two on one GPU unless the config says so, and what
torchrun refuses (collapse.experiment.ranks)."""

import pytest

from collapse.errors import CollapseError
from collapse.experiment import ranks


def test_one_worker_per_gpu_unless_sharing_is_allowed():
    # 2 workers asked, 1 GPU: capped to 1, with a warning naming the cap
    n, warning = ranks.plan_workers(2, cells=4, uses_cuda=True, cuda_devices=1, device="auto", share_device=False)
    assert n == 1 and "1 GPU" in warning and "share_device" in warning
    assert ranks.plan_workers(2, 4, True, 1, "auto", True) == (2, None)          # sharing allowed
    assert ranks.plan_workers(4, 4, True, 4, "auto", False) == (4, None)         # one GPU each
    assert ranks.plan_workers(4, 4, True, 4, "cuda:1", False)[0] == 1            # one named GPU
    assert ranks.plan_workers(2, 4, False, 0, "cpu", False) == (2, None)         # CPU: no limit
    assert ranks.plan_workers(8, 3, True, 8, "auto", False) == (3, None)         # never more than cells


def test_each_worker_gets_its_own_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert ranks.device_slots(3, 4, "auto") == ["0", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert ranks.device_slots(2, 2, "auto") == ["5", "7"]
    assert ranks.device_slots(4, 2, "auto") == ["5", "7", "5", "7"]              # share_device: round robin
    assert ranks.device_slots(2, 2, "cuda:0") == [None, None]                    # a named device: left alone


def test_torchrun_policy(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert ranks.torchrun() is None and ranks.is_main()
    assert ranks.check_torchrun("ngram", "local", 2) is None  # one process: nothing to say
    assert ranks.main_only(lambda: 42) == 42
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it (no process group is joined here)
    with pytest.raises(CollapseError, match="transformer family"):
        ranks.check_torchrun("ngram", "local", 1)
    with pytest.raises(CollapseError, match="ray"):
        ranks.check_torchrun("transformer", "ray", 1)
    assert "ignored" in ranks.check_torchrun("transformer", "local", 2)
    assert ranks.check_torchrun("transformer", "local", 1) is None
