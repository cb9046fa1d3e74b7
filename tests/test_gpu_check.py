"""bench/gpu_check.py: without CUDA it says so and exits 0; its dry run (--device cpu
--tiny) goes through every step of the CUDA path on CPU, so the script does not fail on
first contact with a GPU."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
pytest.importorskip("transformers", reason="gpu_check compares with transformers (test extra)")

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"


def _run(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the no-CUDA path does not apply")
def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    proc = _run("--out", tmp_path / "x.json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no CUDA device" in proc.stdout
    assert not (tmp_path / "x.json").exists()


def test_dry_run_on_cpu_exercises_every_step(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = _run("--device", "cpu", "--tiny", "--threads", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert [x["precision"] for x in r["logits"]] == ["bf16", "fp16"]
    assert all(x["pass"] and x["err_hf"] > 0 for x in r["logits"])
    assert [(x["precision"], x["compile"], x["micro_batch"]) for x in r["training"]] == [
        ("bf16", False, 4), ("bf16", False, 8), ("bf16", True, 8)]
    assert all(x["tokens_per_second"] > 0 and x["steps"] == 3 for x in r["training"])
    # eager and compiled training of the same rows agree (bf16 autocast: loose)
    eager, compiled = r["training"][1], r["training"][2]
    assert abs(eager["final_loss"] - compiled["final_loss"]) <= 1e-2 * eager["final_loss"]
    assert compiled["compile_seconds"] > 0 and eager["compile_seconds"] == 0
    g = r["training_generation"]
    assert g["kind"].startswith("MEASURED") and g["minutes"] > 0 and "optimizer steps" in g["slice"]
    assert r["sampling"]["tokens_per_second_ours"] > 0 and r["sampling"]["tokens_per_second_hf"] > 0
    assert [(x["mode"], x["rows"], x["refill"], x["compile"]) for x in r["sampling_rows"]] == [
        ("old", 4, False, False), ("eager", 4, True, False), ("compile", 4, True, True)]
    assert all(x["documents_per_second"] > 0 and 0 < x["mean_length"] <= 40 for x in r["sampling_rows"])
    # refill takes fewer decode steps than rows x the longest document of each batch would
    assert all(x["decode_steps"] < x["documents"] * 40 / x["rows"] + 40 for x in r["sampling_rows"][1:])
    m = r["generation"]
    assert m["kind"].startswith("MEASURED") and m["generation_minutes"] == pytest.approx(
        m["training_minutes"] + m["sampling_minutes"])
    assert "one paper generation (MEASURED rates" in proc.stdout
    assert r["projection"]["kind"].startswith("PROJECTION")
    assert "PROJECTION" in proc.stdout and "logit agreement" in proc.stdout
    assert "training of one paper generation" in proc.stdout


def _module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return mod


def test_training_rows_are_chosen_on_the_command_line():
    mod = _module()
    assert mod.parse_training("bf16-det:eager:64, fp16:compile:320") == [("fp16", False, True, 320),
                                                                         ("bf16", True, False, 64)]
    for bad in ("bf16:jit:64", "bf16:eager", "bf8:eager:64", "bf16:eager:0"):
        with pytest.raises(SystemExit):
            mod.parse_training(bad)



def test_a_failing_training_row_is_reported_and_the_others_still_run(monkeypatch):
    """On a GPU, a row that runs out of memory or fails to compile must not cost the
    rest of the check (its device time is scarce)."""
    mod = _module()
    from collapse.transformer import train as train_module

    real = train_module.train

    def train(cfg, rows, eot, tc, **kw):
        if tc.micro_batch_size == 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(cfg, rows, eot, tc, **kw)

    monkeypatch.setattr(train_module, "train", train)
    rows = mod.check_training(torch.device("cpu"), True, None, "bf16:eager:4,bf16:eager:8")
    assert rows[0]["tokens_per_second"] > 0 and "error" not in rows[0]
    assert rows[1]["error"].startswith("OutOfMemoryError: CUDA out of memory") and rows[1]["tokens_per_second"] is None
    g = mod.training_generation(rows)
    assert g["row"] == "bf16 eager micro 4" and g["minutes"] > 0
    assert mod.training_generation(rows[1:])["kind"].startswith("NOT MEASURED")
