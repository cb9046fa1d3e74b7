"""A run's status as text: each cell's generation, last metrics, time per generation and time left, live or after a kill."""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Dict, List, Optional

from ..errors import CollapseError
from ..files import read_json
from .rundir import lock_owner

STATE_FILE = "state.json"  # a cell's commit point (experiment.loop writes it)
ENDED = "ended"


def _state(run_dir: str, cell_id: str) -> Dict[str, Any]:
    """A cell's committed state (state.json is replaced atomically, so it is read whole even
    while the run writes it); {} before its first commit or where it cannot be read."""
    try:
        return read_json(os.path.join(run_dir, cell_id, STATE_FILE))
    except (OSError, ValueError):
        return {}


def seconds_per_generation(rows: List[Dict[str, Any]]) -> Optional[float]:
    """The mean of the rows' seconds after generation 0 (which trains the shared M_0 and is not
    typical), else generation 0's; None without timings."""
    times = [(int(r["generation"]), float(r["seconds"])) for r in rows
             if isinstance(r.get("seconds"), (int, float)) and math.isfinite(r["seconds"])]
    later = [s for g, s in times if g > 0]
    pool = later or [s for _, s in times]
    return sum(pool) / len(pool) if pool else None


def duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.2g}s" if seconds < 10 else f"{seconds:.0f}s"
    seconds = round(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _metric(row: Dict[str, Any], key: str, fmt: str) -> str:
    v = row.get(key)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    return format(v, fmt)


def cell_lines(run_dir: str, manifest: Dict[str, Any]) -> "tuple[List[Dict[str, Any]], float, int]":
    """Per cell: what status prints; and the generations left with their estimated seconds."""
    total = int(manifest["generations"]) + 1
    out = []
    for cell in manifest.get("cells") or []:
        st = _state(run_dir, cell["id"])
        rows = [r for r in st.get("rows", []) if r.get("status", "ok") != ENDED]
        done = int(st.get("generations_done", 0))
        status = st.get("status", "ok")
        if status == ENDED:
            state = f"ended at generation {st.get('ended_at')}: {st.get('reason')}"
        elif done >= total:
            state = "done"
        elif done == 0:
            state = "waiting"
        else:
            working = os.path.isdir(os.path.join(run_dir, cell["id"], f"work_{done:04d}"))
            state = f"at generation {done}" + (" (in progress)" if working else "")
        out.append({"id": cell["id"], "done": done, "total": total, "state": state, "last": rows[-1] if rows else {},
                    "per_gen": seconds_per_generation(rows), "left": 0 if status == ENDED else max(0, total - done)})
    known = [c["per_gen"] for c in out if c["per_gen"] is not None]
    fallback = sum(known) / len(known) if known else None  # a cell with no timing yet: like the others
    for c in out:
        rate = c["per_gen"] if c["per_gen"] is not None else fallback
        c["eta"] = 0.0 if c["left"] == 0 else (c["left"] * rate if rate is not None else math.nan)
    return out, sum(c["eta"] for c in out), sum(c["left"] for c in out)


def workers_of(run_dir: str) -> int:
    """experiment.workers from the run's config.toml (1 where it says nothing)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        with open(os.path.join(run_dir, "config.toml"), "rb") as f:
            return max(1, int(tomllib.load(f).get("experiment", {}).get("workers", 1)))
    except (OSError, ValueError, tomllib.TOMLDecodeError):
        return 1


def status_text(run_dir: str) -> str:
    """The status of the run in run_dir: a header, one line per cell, a total."""
    if not os.path.isdir(run_dir):
        raise CollapseError(f"no such run directory: {run_dir}")
    path = os.path.join(run_dir, "manifest.json")
    if not os.path.exists(path):
        raise CollapseError(f"{run_dir} holds no run (no manifest.json)")
    try:
        manifest = read_json(path)
    except ValueError as err:
        raise CollapseError(f"{path}: not JSON ({err})") from None
    if manifest.get("kind") != "experiment" or "generations" not in manifest:
        raise CollapseError(f"{run_dir}: not a `collapse run` directory (manifest kind {manifest.get('kind')!r})")
    cells, eta, left = cell_lines(run_dir, manifest)
    owner = lock_owner(run_dir)
    if owner is not None:
        life = f"running: live owner pid {owner} (run.lock)"
    elif left:
        life = "not running: no live owner (stopped or killed; continue with --resume)"
    else:
        life = "finished: no live owner"
    workers = min(workers_of(run_dir), max(1, sum(1 for c in cells if c["left"])))
    width = max([4] + [len(c["id"]) for c in cells])
    lines = [f"run {manifest.get('name')} in {run_dir}: {len(cells)} cells, generations 0..{manifest['generations']}; {life}",
             f"{'cell':<{width}}  {'gen':>9}  {'bits/word':>9}  {'kl_truth':>9}  {'vocab':>7}  {'s/gen':>8}  "
             f"{'left':>8}  status"]
    for c in cells:
        last = c["last"]
        lines.append(f"{c['id']:<{width}}  {c['done']:>4}/{c['total']:<4}  "
                     f"{_metric(last, 'heldout_bits_per_word', '.4f'):>9}  {_metric(last, 'kl_truth', '.3f'):>9}  "
                     f"{_metric(last, 'vocab_size', 'd'):>7}  {duration(c['per_gen']):>8}  "
                     f"{duration(c['eta']) if c['left'] else '-':>8}  {c['state']}")
    done = sum(c["done"] for c in cells)
    total = sum(c["total"] for c in cells if c["state"].split()[0] != ENDED) + sum(
        c["done"] for c in cells if c["state"].split()[0] == ENDED)
    estimate = (f"about {duration(eta / workers)} left with {workers} worker{'s' * (workers != 1)} "
                f"({duration(eta)} of work, from this run's own timings)") if left else "nothing left"
    lines.append(f"total: {done}/{total} generations; {estimate}")
    return "\n".join(lines)
