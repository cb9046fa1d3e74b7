"""run_experiment from a script: worker processes that cannot start are one clear error, not BrokenProcessPool."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import collapse
    collapse.run_experiment({"experiment": {"paradigms": ["replace", "accumulate"], "generations": 1,
                                            "workers": 2, "progress": False},
                             "data": {"num_documents": 100, "heldout_documents": 20}}, out=OUT)
""")


def test_an_unguarded_script_with_workers_says_what_to_do(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(f"OUT = {str(tmp_path / 'run')!r}\n" + SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("collapse.errors.CollapseError: a worker process died"), proc.stderr[-2000:]
    assert 'if __name__ == "__main__":' in last and "experiment.workers = 1" in last


def test_the_same_script_guarded_runs(tmp_path):
    script = tmp_path / "study.py"
    guarded = "if __name__ == '__main__':\n" + textwrap.indent(SCRIPT, "    ")
    script.write_text(f"OUT = {str(tmp_path / 'run')!r}\n" + guarded)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 1 + 2 * 2  # header, 2 cells x gens 0-1
