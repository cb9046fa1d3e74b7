"""Fuzz target: corpus file (lines, tinystories, jsonl, parquet; whitespace and word
tokenizers) -> load_corpus -> NGramModel.fit -> score -> sample -> to_arpa -> read back."""

from __future__ import annotations

import harness
from harness import NGramModel, collapse

FORMATS = ("lines", "tinystories", "jsonl", "parquet")
TOKENIZERS = ("whitespace", "word")
SMOOTHINGS = ("mkn", "kn", "addk", "mle")


def parquet_file(payload: bytes, raw: bool) -> str:
    """Raw bytes as a .parquet file, or (usually) a well-formed file whose `text` column
    holds the payload's lines, so that the strings inside are what gets fuzzed."""
    if raw:
        return harness.write("in.parquet", payload)
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = payload.decode("utf-8", errors="replace").split("\n")
    path = harness.scratch("in.parquet")
    pq.write_table(pa.table({"text": texts}), path)
    return path


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, knobs, payload = data[0], data[1], data[2:]
    fmt = FORMATS[mode % 4]
    tokenizer = TOKENIZERS[(mode >> 2) % 2]
    lowercase = bool((mode >> 3) & 1)
    order = 1 + knobs % 4
    smoothing = SMOOTHINGS[(knobs >> 2) % 4]
    if fmt == "parquet":
        path = parquet_file(payload, raw=bool((mode >> 4) & 1) and bool((mode >> 5) & 1))
    else:
        path = harness.write(f"in.{fmt}", payload)
    corpus = collapse.load_corpus(path, format=fmt, tokenizer=tokenizer, lowercase=lowercase)
    model = NGramModel.fit(corpus, order=order, smoothing=smoothing, threads=2)
    harness.check_model(model, corpus)


if __name__ == "__main__":
    harness.run(test_one_input)
