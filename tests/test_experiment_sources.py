"""Real data from local files: lines, raw TinyStories, JSONL, parquet, HF datasets arrow;
fresh real data from a pool of unused documents, refused up front when too small."""

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

import collapse
from collapse.data.storygrammar import get_grammar
from collapse.experiment.rundir import TIMING_COLUMNS

TEXTS = get_grammar().texts(300, seed=42)


def write_all_formats(tmp_path):
    paths = {}
    p = tmp_path / "c.txt"
    p.write_text("".join(t + "\n" for t in TEXTS))
    paths["lines"] = p
    p = tmp_path / "c.tinystories.txt"
    p.write_text("".join(t + "\n<|endoftext|>\n" for t in TEXTS))
    paths["tinystories"] = p
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    paths["jsonl"] = p
    table = pa.table({"text": TEXTS})
    p = tmp_path / "c.parquet"
    pq.write_table(table, p)
    paths["parquet"] = p
    p = tmp_path / "c.arrow"  # what datasets' save_to_disk / cache writes: an Arrow IPC stream
    with pa.OSFile(str(p), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    paths["arrow"] = p
    return paths


def config(path, fmt, generations=2, num_documents=100):
    return {"experiment": {"generations": generations, "paradigms": ["replace", "fresh"], "alphas": [0.5],
                           "workers": 1, "progress": False},
            "data": {"source": "file", "path": str(path), "format": fmt, "heldout_fraction": 0.1,
                     "num_documents": num_documents},
            "model": {"order": 3}}


def test_every_format_gives_the_same_run(tmp_path):
    paths = write_all_formats(tmp_path)
    frames = {}
    for fmt, path in paths.items():
        df = collapse.run_experiment(config(path, fmt))
        frames[fmt] = df.drop(columns=[c for c in TIMING_COLUMNS if c in df.columns])
    first = frames["lines"]
    assert len(first) == 2 * 3 and first.train_documents.eq(100).all()
    assert first.kl_truth.isna().all()  # no known source for file data
    for fmt, df in frames.items():
        assert df.equals(first), fmt
    # fresh generation t uses pool documents never used for training: a real half of 50
    fresh = first[(first.paradigm == "fresh") & (first.generation > 0)]
    assert fresh.train_documents.eq(100).all()


def test_fresh_pool_too_small_is_refused_before_running(tmp_path):
    path = write_all_formats(tmp_path)["lines"]
    # 300 documents: 30 held out, 250 for training leaves 20; fresh(0.5) needs 125 per generation
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[experiment]
generations = 2
paradigms = ["fresh"]
alpha = 0.5
[data]
source = "file"
path = "{path}"
num_documents = 250
""")
    proc = subprocess.run([sys.executable, "-m", "collapse", "run", str(cfg), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("collapse: error: data.num_documents: fresh needs 250 unused documents")
    assert not (tmp_path / "out").exists()


def test_shared_tinystories_sample(tinystories_dir):
    cfg = {"experiment": {"generations": 1, "paradigms": ["replace"], "workers": 1, "progress": False},
           "data": {"source": "file", "path": str(tinystories_dir / "train-head.txt"), "format": "tinystories",
                    "tokenizer": "word", "lowercase": True, "num_documents": 300,
                    "heldout_path": str(tinystories_dir / "valid-head.txt"), "heldout_format": "paragraphs"},
           "model": {"order": 3}}
    df = collapse.run_experiment(cfg)
    assert len(df) == 2 and df.heldout_ppl.iloc[1] > df.heldout_ppl.iloc[0] > 1
    assert df.vocab_size.iloc[0] > 500
