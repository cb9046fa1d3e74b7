"""Experiment trackers ([output] trackers): TensorBoard, Weights & Biases and MLflow, fed by the driver after each commit.

Every tool gets the same shape: one tracker run per cell (TensorBoard: RUN_DIR/tensorboard/
<cell id>/; W&B: a run named after the cell in a group named after the experiment; MLflow: a
run nested under the study's run), whose metrics carry the metrics table's column names
("heldout_bits_per_word", ...) with step = generation, so each tool overlays the cells on one
chart per metric; its hyper-parameters are the cell's keys (model, paradigm, alpha, order,
filter_keep, seed). One more run per tool, "study", holds the whole resolved config and, at
the end, the run's figure (metrics.png).

Only the driver (rank 0) logs, from the cells' commit points (state.json), so there is one
writer whatever the executor. RUN_DIR/trackers.json records, per tracker, each cell's last
logged generation and the tracker's run ids: --resume continues the same runs (the same
TensorBoard folders, W&B run ids, MLflow run ids) and never logs a generation twice.
The packages are optional (extras tensorboard, wandb, mlflow) and imported only here, lazily.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
import tomllib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..errors import CollapseError
from ..files import read_json, write_json
from .config import TRACKERS, Cell, ExperimentConfig, to_toml

PACKAGES = {name: name for name in TRACKERS}  # what each imports (mlflow-skinny installs "mlflow" too)
STATE = "trackers.json"
STUDY = "study"  # the tracker run of the whole run (config, figure), beside one per cell


def check_installed(names: Sequence[str]) -> None:
    """One line naming the extra for the first tracker whose package is missing; called when
    a run starts, before it writes anything (a config is still readable without them)."""
    for name in names:
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise CollapseError(f"output.trackers: {name!r} needs the {PACKAGES[name]} package "
                                f"(pip install \"collapse[{name}]\")")


def _flat(table: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested tables as "table.key" -> value (lists as their TOML-ish text): hyper-parameters."""
    out: Dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            out[prefix + key] = repr(value) if not any(isinstance(v, dict) for v in value) else str(value)
        else:
            out[prefix + key] = value
    return out


def cell_params(cfg: ExperimentConfig, cell: Cell) -> Dict[str, Any]:
    """The cell's keys, as the metrics table names them; None (not an axis of this cell) left out."""
    model = cfg.model_table(cell.model) if cell.model else cfg.model
    keys = {"model": model.name, "family": model.family, "paradigm": cell.paradigm, "alpha": cell.alpha,
            "order": cell.order, "filter_keep": cell.keep, "seed": cell.seed}
    return {k: v for k, v in keys.items() if v is not None}


def row_metrics(row: Dict[str, Any], keys: Sequence[str]) -> Dict[str, float]:
    """Every number of a metrics-table row except its keys; a value not measured (None, NaN) is left out."""
    out = {}
    for name, value in row.items():
        if name in keys or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[name] = float(value)
    return out


class TensorBoard:
    """Event files under RUN_DIR/tensorboard/: one folder (a TensorBoard "run") per cell and
    one for the study. Written with tensorboard's own EventFileWriter and summary protos (no
    TensorFlow, no torch); scalars as simple values, as torch's SummaryWriter writes them."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str, state: Dict[str, Any]) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.event, self.summary, self.writer_class = event_pb2.Event, summary_pb2.Summary, EventFileWriter
        self.root = os.path.join(run_dir, "tensorboard")
        self.state = state
        self.config_text = to_toml(cfg)
        self.writers: Dict[str, Any] = {}

    def _writer(self, name: str) -> Any:
        if name not in self.writers:  # on --resume a new event file in the same folder: TensorBoard reads them all
            self.writers[name] = self.writer_class(os.path.join(self.root, name))
        return self.writers[name]

    def _emit(self, name: str, step: int, summary: Any) -> None:
        self._writer(name).add_event(self.event(wall_time=time.time(), step=step, summary=summary))

    def start(self, name: str, params: Dict[str, Any]) -> None:
        from tensorboard.plugins.hparams.summary_v2 import hparams_pb
        from tensorboard.plugins.text.summary_v2 import text_pb

        if params:
            self._emit(name, 0, hparams_pb(params, trial_id=name))
        else:  # the study: its config, as text
            self._emit(name, 0, text_pb("config", self.config_text))

    def log(self, name: str, step: int, metrics: Dict[str, float]) -> None:
        values = [self.summary.Value(tag=k, simple_value=v) for k, v in metrics.items()]
        self._emit(name, step, self.summary(value=values))

    def ended(self, name: str, step: int, reason: str) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb

        self._emit(name, step, text_pb("ended", reason))

    def flush(self) -> None:
        for w in self.writers.values():
            w.flush()

    def close(self, figure: Optional[str], step: int, interrupted: bool) -> None:
        if figure is not None:
            from PIL import Image  # matplotlib's dependency: the figure's size

            with Image.open(figure) as im:
                width, height = im.size
            with open(figure, "rb") as f:
                image = self.summary.Image(height=height, width=width, colorspace=4, encoded_image_string=f.read())
            self._emit(STUDY, step, self.summary(value=[self.summary.Value(tag="figure", image=image)]))
        for w in self.writers.values():
            w.close()


class WandB:
    """One W&B run per cell and one for the study, grouped by the experiment's name, under
    RUN_DIR/wandb/ (or WANDB_DIR). Offline unless WANDB_MODE says otherwise: `wandb sync
    RUN_DIR/wandb/offline-run-*` uploads them. Project "collapse" unless WANDB_PROJECT."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str, state: Dict[str, Any]) -> None:
        import wandb

        self.wandb = wandb
        self.state = state
        self.ids = state.setdefault("run_ids", {})
        self.config = tomllib.loads(to_toml(cfg))
        self.group = cfg.experiment.name
        self.dir = os.environ.get("WANDB_DIR") or os.path.abspath(run_dir)
        self.runs: Dict[str, Any] = {}

    def _run(self, name: str, params: Optional[Dict[str, Any]] = None) -> Any:
        if name not in self.runs:
            w = self.wandb
            config = dict(self.config, cell=params) if params else self.config
            self.runs[name] = w.init(
                project=os.environ.get("WANDB_PROJECT", "collapse"), group=self.group, name=name, id=self.ids.get(name),
                resume="allow", config=config, dir=self.dir, reinit="create_new",
                mode=None if os.environ.get("WANDB_MODE") else "offline",  # the user's WANDB_MODE wins
                settings=w.Settings(console="off", save_code=False, x_disable_stats=True))
            self.ids[name] = self.runs[name].id
        return self.runs[name]

    def start(self, name: str, params: Dict[str, Any]) -> None:
        self._run(name, params)

    def log(self, name: str, step: int, metrics: Dict[str, float]) -> None:
        self._run(name).log(dict(metrics, generation=step), step=step)

    def ended(self, name: str, step: int, reason: str) -> None:
        self._run(name).summary.update({"status": "ended", "ended_at": step, "reason": reason})

    def flush(self) -> None:
        pass  # wandb's service writes as it receives

    def close(self, figure: Optional[str], step: int, interrupted: bool) -> None:
        if figure is not None:
            self._run(STUDY).log({"figure": self.wandb.Image(figure)})
        for run in self.runs.values():
            run.finish(exit_code=1 if interrupted else 0)


class MLflow:
    """An MLflow run for the study (the config as parameters, the figure as an artifact) and
    one nested run per cell, in the experiment named after [experiment] name. Tracking URI:
    MLFLOW_TRACKING_URI, else a local file store RUN_DIR/mlruns (`mlflow ui --backend-store-uri
    RUN_DIR/mlruns`); MLflow 3 keeps that store only with MLFLOW_ALLOW_FILE_STORE=true, which
    is set for the client's creation unless the user set it."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str, state: Dict[str, Any]) -> None:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI") or Path(os.path.abspath(run_dir), "mlruns").as_uri()
        if state.get("tracking_uri") != uri:  # another store: its runs are not there
            state.clear()
            state["tracking_uri"] = uri
        self.state = state
        self.ids: Dict[str, str] = state.setdefault("run_ids", {})
        allow = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self.client = MlflowClient(tracking_uri=uri)
        finally:
            if allow is None:
                del os.environ["MLFLOW_ALLOW_FILE_STORE"]
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or cfg.experiment.name
        found = self.client.get_experiment_by_name(name)
        self.experiment = found.experiment_id if found is not None else self.client.create_experiment(name)
        self.config = {k: str(v) for k, v in _flat(tomllib.loads(to_toml(cfg))).items()}
        for run_id in self.ids.values():  # --resume: the runs go on
            self.client.update_run(run_id, status="RUNNING")

    def start(self, name: str, params: Dict[str, Any]) -> None:
        from mlflow.entities import Param

        if name in self.ids:  # a resumed run: its parameters are those of its start (MLflow's are immutable)
            return
        tags = {"mlflow.parentRunId": self.ids[STUDY]} if params else {}
        run = self.client.create_run(self.experiment, run_name=name, tags=tags)
        self.ids[name] = run.info.run_id
        values = {k: str(v) for k, v in params.items()} if params else self.config
        self.client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in values.items()])

    def log(self, name: str, step: int, metrics: Dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.ids[name], metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def ended(self, name: str, step: int, reason: str) -> None:
        self.client.set_tag(self.ids[name], "collapse.ended_at", str(step))
        self.client.set_tag(self.ids[name], "collapse.reason", reason[:5000])

    def flush(self) -> None:
        pass  # every call is written when it returns

    def close(self, figure: Optional[str], step: int, interrupted: bool) -> None:
        if figure is not None:
            self.client.log_artifact(self.ids[STUDY], figure)
        for name, run_id in self.ids.items():
            status = "KILLED" if interrupted else "FAILED" if name in self.state.get("ended", ()) else "FINISHED"
            self.client.set_terminated(run_id, status=status)


BACKENDS = {"tensorboard": TensorBoard, "wandb": WandB, "mlflow": MLflow}


class Trackers:
    """The run's trackers, driven from its commit points: ``log()`` after every commit,
    ``close(figure)`` at the end. With no [output] trackers (or off rank 0) every call is a no-op."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str, cells: Sequence[Cell], state_file: str,
                 keys: Sequence[str], enabled: bool = True) -> None:
        self.names: List[str] = list(cfg.output.trackers) if enabled else []
        self.cfg, self.run_dir, self.cells = cfg, run_dir, list(cells)
        self.state_file, self.keys = state_file, tuple(keys) + ("generation",)
        self.path = os.path.join(run_dir, STATE)
        self.state: Dict[str, Any] = {}
        self.backends: Dict[str, Any] = {}
        if not self.names:
            return
        if os.path.exists(self.path):
            self.state = read_json(self.path)
        for name in self.names:
            st = self.state.setdefault(name, {})
            self.backends[name] = BACKENDS[name](cfg, run_dir, st)
            if not st.get("started"):  # the study's run first: MLflow's cell runs nest under it
                self.backends[name].start(STUDY, {})
                st["started"] = True
        self._save()

    def _save(self) -> None:
        write_json(self.path, self.state)

    def log(self) -> None:
        """Log every committed generation not logged yet, of every cell, into every tracker."""
        if not self.backends:
            return
        states = {}
        for cell in self.cells:
            path = os.path.join(self.run_dir, cell.id, self.state_file)
            if os.path.exists(path):
                states[cell.id] = (cell, read_json(path))
        for name, backend in self.backends.items():
            logged = self.state[name].setdefault("logged", {})
            ended = self.state[name].setdefault("ended", [])
            for cell_id, (cell, st) in states.items():
                rows = [r for r in st["rows"] if r["generation"] > logged.get(cell_id, -1)]
                if rows and cell_id not in logged:
                    backend.start(cell_id, cell_params(self.cfg, cell))
                for row in rows:
                    backend.log(cell_id, int(row["generation"]), row_metrics(row, self.keys))
                    logged[cell_id] = int(row["generation"])
                if st.get("status") == "ended" and cell_id not in ended:
                    if cell_id not in logged:
                        backend.start(cell_id, cell_params(self.cfg, cell))
                        logged[cell_id] = -1
                    backend.ended(cell_id, int(st["ended_at"]), str(st["reason"]))
                    ended.append(cell_id)
            backend.flush()
        self._save()  # after the trackers have it: a kill in between re-logs at most that much on --resume

    def close(self, figure: Optional[str] = None, interrupted: bool = False) -> None:
        """Log what is left, then the figure (when given and present), and end every tracker run."""
        if not self.backends:
            return
        self.log()
        last = max((g for st in self.state.values() for g in st.get("logged", {}).values()), default=0)
        if figure is not None and not os.path.exists(figure):
            figure = None
        for backend in self.backends.values():
            backend.close(figure, last, interrupted)
        self.backends = {}
