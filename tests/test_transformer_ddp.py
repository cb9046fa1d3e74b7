"""DDP training and sharded sampling under torchrun (2 CPU processes, gloo) give what one
process gives."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)


SCRIPT = textwrap.dedent("""
    import sys, numpy as np, torch
    torch.set_num_threads(1)
    from collapse.transformer.model import GPTNeoConfig
    from collapse.transformer.train import TrainConfig, train, make_rows, dist_from_env
    from collapse.transformer.generate import SamplingConfig, generate_distributed
    out = sys.argv[1]
    dist = dist_from_env()
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 40, size=rng.integers(3, 30)) for _ in range(50)]
    flat = np.concatenate([np.append(d, 0) for d in docs])
    offsets = np.concatenate([[0], np.cumsum([d.size + 1 for d in docs])])
    rows = make_rows(flat, offsets, 0, 16, "pack")
    cfg = GPTNeoConfig(vocab_size=40, max_position_embeddings=32, hidden_size=16, num_layers=2, num_heads=2,
                       window_size=4, bos_token_id=0, eos_token_id=0)
    model, stats = train(cfg, rows, 0, TrainConfig(batch_size=8, micro_batch_size=2, epochs=2,
                                                   context_length=16, device="cpu"), seed=3, dist=dist)
    seqs = generate_distributed(model, 10, 5, 0, SamplingConfig(max_new_tokens=12, batch_size=3), dist)
    if dist.rank == 0:
        np.savez(out, *[p.detach().numpy() for p in model.parameters()], losses=np.array(stats.losses),
                 seqs=np.array([" ".join(map(str, s)) for s in seqs]))
    if dist.enabled:
        # both ranks done before gloo is torn down (a rank leaving while the other still
        # writes was seen to abort it once: "terminate called without an active exception")
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
""")


def _run(tmp_path, nproc):
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"out{nproc}.npz"
    # the children import collapse as this process does (installed package, or PYTHONPATH
    # made absolute: torchrun's workers do not resolve relative entries as we do)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    if nproc == 1:
        cmd = [sys.executable, str(script), str(out)]
        env.pop("WORLD_SIZE", None)
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(script), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def test_two_ranks_train_and_sample_like_one(tmp_path):
    one, two = _run(tmp_path, 1), _run(tmp_path, 2)
    assert np.allclose(one["losses"], two["losses"], rtol=1e-4, atol=1e-5)
    params = [k for k in one.files if k.startswith("arr_")]
    assert params
    for k in params:
        assert np.allclose(one[k], two[k], rtol=1e-3, atol=1e-5), k
    assert list(one["seqs"]) == list(two["seqs"])
