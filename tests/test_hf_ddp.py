"""The hf family under torchrun (2 CPU processes, gloo): DDP training through the backend's
loss module and sharded sampling give what one process gives."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf family needs torch")
pytest.importorskip("transformers", reason="the hf family needs transformers")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

SCRIPT = textwrap.dedent("""
    import sys, numpy as np, torch
    torch.set_num_threads(1)
    from collapse.data.storygrammar import sample_stories
    from collapse.hf import HFFamily
    from collapse.transformer.train import dist_from_env
    path, out = sys.argv[1], sys.argv[2]
    dist = dist_from_env()
    family = HFFamily.from_config({
        "path": path, "init": "pretrained", "prompt": "real-prefix", "prefix_tokens": 3, "epochs": 2,
        "batch_size": 8, "micro_batch_size": 2, "context_length": 32, "lr": 3e-3, "max_new_tokens": 12,
        "sample_batch_size": 3, "device": "cpu", "threads": 1, "progress": False})
    real = sample_stories(12, 1)
    family.prepare(real)
    model = family.fit(real, seed=3)
    seqs = model.sample_token_ids(10, seed=5)
    lp = model.document_log_probs(real)
    if dist.rank == 0:
        np.savez(out, *[p.detach().numpy() for p in model.model.parameters()], losses=np.array(model.stats.losses),
                 seqs=np.array([" ".join(map(str, s)) for s in seqs]), lp=lp)
    if dist.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
""")


def _run(tmp_path, path, nproc):
    script = tmp_path / "hf_ddp_script.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"out{nproc}.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    if nproc == 1:
        cmd = [sys.executable, str(script), path, str(out)]
        env.pop("WORLD_SIZE", None)
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(script), path, str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def test_two_ranks_fit_and_sample_like_one(tmp_path):
    from collapse.hf.tiny import grammar_tokenizer, make_tiny

    # llama: no dropout (GPT-2's would draw other masks on each rank)
    path = make_tiny(str(tmp_path / "llama"), "llama", positions=128, tokenizer=grammar_tokenizer(300, 300))
    one, two = _run(tmp_path, path, 1), _run(tmp_path, path, 2)
    assert one["losses"].size > 2
    np.testing.assert_allclose(one["losses"], two["losses"], rtol=1e-5, atol=1e-5)
    params = [k for k in one.files if k.startswith("arr_")]
    assert params
    for k in params:
        np.testing.assert_allclose(one[k], two[k], rtol=1e-4, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(one["lp"], two["lp"], rtol=1e-5)
    assert list(one["seqs"]) == list(two["seqs"])
