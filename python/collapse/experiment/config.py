"""Experiment configuration: TOML in, a validated ExperimentConfig out (and the resolved config back to TOML).

Every error names the field it is about ("experiment.alpha: must be in [0, 1], got 1.5"),
unknown keys are rejected by name, and relative paths are resolved against the directory of
the config file. See docs/experiment.md for the reference of every table and key.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..data.corpus import FORMATS, TOKENIZERS
from ..errors import CollapseError
from ..files import toml_text
from ..validate import choice, did_you_mean, real, threads as validate_threads
from ..validate import seed as validate_seed
from .family import Settings
from .paradigms import ALPHA_PARADIGMS, PARADIGMS
from .registry import known_families, registration, unknown_family
from .tables import ConfigError, Table as _Table, fail as _fail, resolve_path as _resolve
from .tables import scalar_or_list as _scalar_or_list

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA_SOURCES = ("grammar", "code", "file")
EMBEDDED_SOURCES = ("grammar", "code")  # sources with exact document probabilities (collapse.data.exactsource)
# [data] keys that belong to one kind of source only (config.toml keeps those of its own)
FILE_KEYS = ("path", "format", "field", "tokenizer", "lowercase", "heldout_path", "heldout_format",
             "heldout_fraction", "accept_split")
SOURCE_KEYS = {"grammar": ("num_names", "zipf", "continue_prob"),
               "code": ("num_identifiers", "num_numbers", "zipf", "continue_prob", "max_depth", "max_statements")}
DATA_FORMATS = FORMATS
EXECUTORS = ("local", "ray")
FILTER_METHODS = ("none", "perplexity")
TRACKERS = ("tensorboard", "wandb", "mlflow")  # [output] trackers (collapse.experiment.trackers)
CORPUS_FORMATS = ("arrow", "text")  # how a run directory stores S_t (collapse.experiment.loop.save_corpus)


# --------------------------------------------------------------------------------------

@dataclass
class ExperimentTable:
    name: str = "experiment"
    generations: int = 20
    seeds: List[int] = field(default_factory=lambda: [0])
    paradigms: List[str] = field(default_factory=lambda: ["replace"])
    alphas: List[float] = field(default_factory=lambda: [0.5])
    synthetic_factor: float = 1.0
    threads: int = 1
    workers: int = 2
    executor: str = "local"
    address: Optional[str] = None
    progress: bool = True


@dataclass
class DataTable:
    source: str = "grammar"
    path: Optional[str] = None
    format: str = "lines"
    field: str = "text"
    tokenizer: str = "whitespace"
    lowercase: bool = False
    heldout_path: Optional[str] = None
    heldout_format: Optional[str] = None   # of heldout_path; None: the same as format
    heldout_fraction: float = 0.1
    num_documents: Optional[int] = None
    heldout_documents: Optional[int] = 500  # file: None = every held-out document
    accept_split: bool = False              # file: keep a corpus that looks mis-split
    seed: int = 0
    num_names: int = 1000
    zipf: float = 1.1
    continue_prob: float = 0.8
    num_identifiers: int = 1000  # code: identifier class size (the Zipf tail)
    num_numbers: int = 32        # code: number literals 0 .. num_numbers - 1
    max_depth: int = 4           # code: how deep expressions and conditions nest
    max_statements: int = 20     # code: most statements in a program

    @property
    def heldout_text_format(self) -> str:
        """The format heldout_path is read in."""
        return self.heldout_format or self.format


@dataclass
class ModelTable:
    """One model of the study: a [model] table, or one table of a [[model]] array. settings:
    what its family's registration validated (collapse.experiment.registry), the table's
    keys but ``family`` and ``name``."""
    family: str = "ngram"
    settings: Settings = field(default_factory=lambda: {"orders": [3], "smoothing": "mkn", "prune": []})
    name: str = "ngram"      # the metrics' `model` column; a single [model] is named after its family
    field_name: str = "model"  # how errors name this table: "model" or "model[1]"

    @property
    def orders(self) -> List[Optional[int]]:
        """The values of the cells' order axis (an n-gram model's orders; [None]: no sweep)."""
        return list(registration(self.family).sweep(self.settings))

    # The names of earlier versions, for scripts that read them.
    @property
    def smoothing(self) -> Optional[str]:
        return self.settings.get("smoothing")

    @property
    def prune(self) -> List[int]:
        return list(self.settings.get("prune", []))

    @property
    def transformer(self) -> Settings:
        return self.settings


@dataclass
class FilterTable:
    method: str = "none"
    keep_fractions: List[float] = field(default_factory=lambda: [1.0])
    max_perplexity: Optional[float] = None
    dedup: bool = False
    oversample: float = 2.0
    max_rounds: int = 8


@dataclass
class OutputTable:
    """What a run directory keeps. Nothing here changes results: --resume reads only the
    synthetic corpora (in either format) and refits models from their seeds."""

    dir: Optional[str] = None
    save_models: bool = True
    model_every: int = 10       # with save_models: M_t for t = 0, every k-th, and the run's last
    corpus_format: str = "arrow"  # S_t as "arrow" (token ids, zstd) or "text" (gzip, one document a line)
    compression: int = 6        # gzip's level for the .gz files (models, text corpora, vocabularies), zstd's for Arrow
    trackers: List[str] = field(default_factory=list)  # of experiment.trackers.TRACKERS: where each generation is logged too

    def keeps_model(self, t: int, generations: int) -> bool:
        """Whether generation t of a run of ``generations`` saves its model: the first, every
        model_every-th and the last (of a run extended by --resume, the last of each extent
        too: the earlier end was the last when it was written)."""
        return self.save_models and (t % self.model_every == 0 or t == generations)


@dataclass
class DownstreamTask:
    """One task of [downstream] tasks: a built-in task's name, or a local labelled dataset."""
    name: str
    builtin: bool = False
    path: Optional[str] = None       # a file (jsonl, json, csv, tsv, parquet, arrow) or a save_to_disk folder
    test_path: Optional[str] = None  # the test split as its own file; else a DatasetDict's test_split, else test_fraction
    text_field: str = "text"
    label_field: str = "label"
    text_pair_field: Optional[str] = None
    train_split: str = "train"       # splits of a DatasetDict folder (GLUE's test labels are hidden: "validation")
    test_split: str = "test"
    test_fraction: float = 0.2
    max_train: Optional[int] = None  # a seeded shuffle cut to this many (built-in: how many are drawn)
    max_test: Optional[int] = None
    epochs: Optional[float] = None   # this task's epochs (the paper: 0.1 for Yelp and QQP); None: [downstream] epochs


@dataclass
class DownstreamTable:
    """[downstream]: which tasks every ``every``-th generation is fine-tuned on, and how
    (collapse.experiment.downstream; the paper's settings by default)."""
    tasks: List[DownstreamTask] = field(default_factory=list)
    every: int = 1
    max_length: int = 128
    batch_size: int = 8
    lr: float = 2e-5
    epochs: float = 1.0
    seeds: List[int] = field(default_factory=lambda: [0])


@dataclass
class ExperimentConfig:
    experiment: ExperimentTable
    data: DataTable
    models: List[ModelTable]
    filter: FilterTable
    output: OutputTable
    raw: Dict[str, Any]
    base_dir: str = "."
    multi_model: bool = False   # written as a [[model]] array (cells and their ids then name the model)
    downstream: Optional["DownstreamTable"] = None  # [downstream]: fine-tuned task accuracy per generation

    @property
    def model(self) -> ModelTable:
        """The first (for a single [model] table, the only) model."""
        return self.models[0]

    def model_table(self, name: str) -> ModelTable:
        for m in self.models:
            if m.name == name:
                return m
        raise CollapseError(f"no model named {name!r} in the config")

    def cells(self) -> List["Cell"]:
        """Every (model, paradigm, alpha, order, keep fraction, seed) combination, in a fixed order."""
        out = []
        for m in self.models:
            orders = m.orders
            for paradigm in self.experiment.paradigms:
                alphas = self.experiment.alphas if paradigm in ALPHA_PARADIGMS else [None]
                for alpha, order, keep, seed in itertools.product(alphas, orders, self.filter.keep_fractions,
                                                                  self.experiment.seeds):
                    out.append(Cell(paradigm, alpha, order, keep if self.filter.method != "none" else None, seed,
                                    m.name if self.multi_model else ""))
        return out


@dataclass(frozen=True)
class Cell:
    paradigm: str
    alpha: Optional[float]
    order: Optional[int]
    keep: Optional[float]
    seed: int
    model: str = ""   # the model's name in a [[model]] study ("" for a single [model] table)

    @property
    def generation0_key(self) -> Tuple[str, Optional[int], int]:
        """What generation 0 depends on: the model, its order and the seed, never the paradigm."""
        return (self.model, self.order, self.seed)

    @property
    def id(self) -> str:
        parts = [self.model] if self.model else []
        parts.append(self.paradigm)
        if self.alpha is not None:
            parts.append(f"a{self.alpha:g}")
        if self.order is not None:
            parts.append(f"o{self.order}")
        if self.keep is not None:
            parts.append(f"k{self.keep:g}")
        parts.append(f"s{self.seed}")
        return "_".join(parts)

    @property
    def tag(self) -> int:
        """A stable integer for seed derivation (independent of the process: no hash())."""
        h = 1469598103934665603
        for b in self.id.encode("utf-8"):
            h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        return h


def _check_data_path(name: str, path: str, fmt: str) -> None:
    """A file; for arrow also a directory (a Hugging Face save_to_disk dataset)."""
    if not (os.path.isfile(path) or (fmt == "arrow" and os.path.isdir(path))):
        raise _fail(name, f"no such file: {path}")


def _alpha(name: str, v: Any) -> float:
    return real(name, v, 0.0, 1.0, fail=_fail)


def _seed(name: str, v: Any) -> int:
    return validate_seed(name, v, fail=_fail)


def _paradigm(name: str, v: Any) -> str:
    return choice(name, v, PARADIGMS, what="paradigm", fail=_fail)


def _keep(name: str, v: Any) -> float:
    return real(name, v, 0.0, 1.0, lo_open=True, fail=_fail)


def parse_config(raw: Mapping[str, Any], base_dir: str = ".") -> ExperimentConfig:
    """Validate a config mapping (as read from TOML) into an ExperimentConfig."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: must be a table, got {type(raw).__name__}")
    raw = copy.deepcopy(dict(raw))
    known = ("experiment", "data", "model", "filter", "output", "downstream")
    for key in raw:
        if key not in known:
            raise _fail(key, f"unknown table{did_you_mean(key, known)} (choose from {', '.join(known)})")

    t = _Table(raw.get("experiment", {}), "experiment")
    ex = ExperimentTable()
    ex.name = t.str_("name", "experiment")
    ex.generations = t.int_("generations", 20, minimum=1)
    ex.seeds = _scalar_or_list(t, "seed", "seeds", [0], _seed)
    ex.paradigms = _scalar_or_list(t, "paradigm", "paradigms", ["replace"], _paradigm)
    ex.alphas = _scalar_or_list(t, "alpha", "alphas", [0.5], _alpha)
    ex.synthetic_factor = t.float_("synthetic_factor", 1.0, 0.0, None, lo_open=True)
    # Checked here, cut to the machine where it is used: the config keeps what was asked.
    ex.threads = validate_threads(t.f("threads"), t.get("threads", 1), fail=_fail, cap=False)
    ex.workers = t.int_("workers", 2, minimum=1)
    ex.address = t.str_("address", None)
    ex.executor = t.str_("executor", "ray" if ex.address else "local", EXECUTORS)
    ex.progress = t.bool_("progress", True)
    t.finish()

    t = _Table(raw.get("data", {}), "data")
    d = DataTable()
    d.source = t.str_("source", "grammar", DATA_SOURCES)
    d.seed = t.int_("seed", 0, minimum=0)
    d.heldout_documents = t.int_("heldout_documents", 500 if d.source in EMBEDDED_SOURCES else None, minimum=1)
    if d.source in EMBEDDED_SOURCES:
        d.num_documents = t.int_("num_documents", 2000, minimum=1)
        d.zipf = t.float_("zipf", 1.1, 0.0, None, lo_open=True)
        d.continue_prob = t.float_("continue_prob", 0.8, 0.0, 1.0, lo_open=True, hi_open=True)
    if d.source == "grammar":
        d.num_names = t.int_("num_names", 1000, minimum=20)
    elif d.source == "code":
        d.num_identifiers = t.int_("num_identifiers", 1000, minimum=1)
        d.num_numbers = t.int_("num_numbers", 32, minimum=1)
        d.max_depth = t.int_("max_depth", 4, minimum=0)
        d.max_statements = t.int_("max_statements", 20, minimum=1)
    else:
        d.path = _resolve(base_dir, t.str_("path"))
        d.format = t.str_("format", "lines", DATA_FORMATS)
        _check_data_path("data.path", d.path, d.format)
        d.field = t.str_("field", "text")
        d.tokenizer = t.str_("tokenizer", "whitespace", TOKENIZERS)
        d.lowercase = t.bool_("lowercase", False)
        d.heldout_path = _resolve(base_dir, t.str_("heldout_path", None))
        d.heldout_format = t.str_("heldout_format", None, DATA_FORMATS)
        if d.heldout_format is not None and d.heldout_path is None:
            raise _fail("data.heldout_format", "is the format of data.heldout_path, which is not given")
        if d.heldout_format == d.format:
            d.heldout_format = None  # the default spelt out: config.toml keeps only a different format
        if d.heldout_path is not None:
            _check_data_path("data.heldout_path", d.heldout_path, d.heldout_text_format)
        if t.has("heldout_path") and t.has("heldout_fraction"):
            raise _fail("data.heldout_fraction", "give either heldout_path or heldout_fraction, not both")
        if t.has("heldout_documents") and t.has("heldout_fraction"):
            raise _fail("data.heldout_fraction", "give either heldout_documents or heldout_fraction, not both")
        d.heldout_fraction = t.float_("heldout_fraction", 0.1, 0.0, 1.0, lo_open=True, hi_open=True)
        d.num_documents = t.int_("num_documents", None, minimum=1)
        d.accept_split = t.bool_("accept_split", False)
    t.finish()

    models, multi_model = _parse_models(raw.get("model", {}), base_dir)

    t = _Table(raw.get("filter", {}), "filter")
    flt = FilterTable()
    flt.method = t.str_("method", "none", FILTER_METHODS)
    flt.keep_fractions = _scalar_or_list(t, "keep_fraction", "keep_fractions", [1.0], _keep)
    flt.max_perplexity = t.float_("max_perplexity", None, 1.0, None)
    flt.dedup = t.bool_("dedup", False)
    flt.oversample = t.float_("oversample", 2.0, 1.0, None)
    flt.max_rounds = t.int_("max_rounds", 8, minimum=1)
    if flt.method == "none" and (t.has("keep_fraction") or t.has("keep_fractions") or t.has("max_perplexity")):
        raise _fail("filter.method", "is 'none' but filter settings are given (set method = \"perplexity\")")
    t.finish()

    t = _Table(raw.get("output", {}), "output")
    out = OutputTable()
    out.dir = _resolve(base_dir, t.str_("dir", None))
    out.save_models = t.bool_("save_models", True)
    out.model_every = t.int_("model_every", 10, minimum=1)
    out.corpus_format = t.str_("corpus_format", "arrow", choices=CORPUS_FORMATS)
    out.compression = t.int_("compression", 6, minimum=0)
    if out.compression > 9:
        raise _fail("output.compression", f"must be in [0, 9], got {out.compression}")
    out.trackers = _trackers(t)
    t.finish()

    downstream = _parse_downstream(raw["downstream"], base_dir) if "downstream" in raw else None
    for m in models if downstream is not None else []:
        if registration(m.family).downstream is None:
            raise _fail(f"{m.field_name}.family", f"the {m.family!r} family has no downstream evaluation "
                                                  "(FamilyRegistration.downstream); [downstream] cannot run on it")
    return ExperimentConfig(ex, d, models, flt, out, raw, os.path.abspath(base_dir), multi_model, downstream)


DOWNSTREAM_KEYS = ("tasks", "every", "max_length", "batch_size", "lr", "epochs", "seed", "seeds")
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a task's name is part of file names


def _parse_downstream(raw: Any, base_dir: str) -> DownstreamTable:
    from .downstream.builtin import BUILTIN_TASKS

    t = _Table(raw, "downstream")
    ds = DownstreamTable()
    for key in sorted(t.raw):  # a misspelt key is named before a missing one
        if key not in DOWNSTREAM_KEYS:
            raise _fail(t.f(key), "unknown key" + did_you_mean(key, DOWNSTREAM_KEYS))
    tasks = t.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise _fail("downstream.tasks", f"must be a non-empty list of task names or tables, got {tasks!r}")
    ds.tasks = [_parse_task(v, f"downstream.tasks[{i}]", base_dir, BUILTIN_TASKS) for i, v in enumerate(tasks)]
    names = [task.name for task in ds.tasks]
    if len(set(names)) != len(names):
        raise _fail("downstream.tasks", f"two tasks are named {next(n for n in names if names.count(n) > 1)!r}")
    ds.every = t.int_("every", 1, minimum=1)
    ds.max_length = t.int_("max_length", 128, minimum=1)
    ds.batch_size = t.int_("batch_size", 8, minimum=1)
    ds.lr = t.float_("lr", 2e-5, 0.0, None, lo_open=True)
    ds.epochs = t.float_("epochs", 1.0, 0.0, None, lo_open=True)
    ds.seeds = _scalar_or_list(t, "seed", "seeds", [0], _seed)
    t.finish()
    return ds


def _parse_task(raw: Any, where: str, base_dir: str, builtin: Mapping[str, Any]) -> DownstreamTask:
    if isinstance(raw, str):
        raw = {"name": raw}
    t = _Table(raw, where)
    name = t.str_("name")
    if not TASK_NAME.match(name):
        raise _fail(t.f("name"), f"{name!r}: use letters, digits, '_', '.', '-' (it names files)")
    if not t.has("path"):
        if name not in builtin:
            raise _fail(t.f("name"), f"{name!r} is no built-in task{did_you_mean(name, sorted(builtin))} "
                        f"(built-in: {', '.join(sorted(builtin))}); a task of your own needs a path")
        task = DownstreamTask(name, builtin=True, max_train=t.int_("max_train", 1000, minimum=2),
                              max_test=t.int_("max_test", 500, minimum=1))
        task.epochs = t.float_("epochs", None, 0.0, None, lo_open=True)
        t.finish()
        return task
    task = DownstreamTask(name)
    task.path = _resolve(base_dir, t.str_("path"))
    task.test_path = _resolve(base_dir, t.str_("test_path", None))
    for path in (task.path, task.test_path):
        if path is not None and not os.path.exists(path):
            raise _fail(t.f("path" if path == task.path else "test_path"), f"no such file or directory: {path}")
    task.text_field = t.str_("text_field", "text")
    task.label_field = t.str_("label_field", "label")
    task.text_pair_field = t.str_("text_pair_field", None)
    task.train_split = t.str_("train_split", "train")
    task.test_split = t.str_("test_split", "test")
    if t.has("test_path") and t.has("test_fraction"):
        raise _fail(t.f("test_fraction"), "give either test_path or test_fraction, not both")
    task.test_fraction = t.float_("test_fraction", 0.2, 0.0, 1.0, lo_open=True, hi_open=True)
    task.max_train = t.int_("max_train", None, minimum=2)
    task.max_test = t.int_("max_test", None, minimum=1)
    task.epochs = t.float_("epochs", None, 0.0, None, lo_open=True)
    t.finish()
    return task


def _trackers(t: _Table) -> List[str]:
    """[output] trackers: a list of distinct names of TRACKERS (their packages are checked when a run starts)."""
    names = t.get("trackers", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(t.f("trackers"), f"must be a list of names ({', '.join(TRACKERS)}), got {names!r}")
    for name in names:
        if name not in TRACKERS:
            raise _fail(t.f("trackers"), f"unknown tracker {name!r}{did_you_mean(name, TRACKERS)} "
                                         f"(choose from {', '.join(TRACKERS)})")
    if len(set(names)) != len(names):
        raise _fail(t.f("trackers"), f"names a tracker twice: {names!r}")
    return list(names)


def _parse_models(raw_model: Any, base_dir: str) -> Tuple[List[ModelTable], bool]:
    """A single [model] table, or a [[model]] array of tables each with a unique name."""
    if isinstance(raw_model, list):
        if not raw_model:
            raise _fail("model", "the [[model]] array is empty")
        models = [_parse_model(t, f"model[{i}]", base_dir, named=True) for i, t in enumerate(raw_model)]
        seen: Dict[str, int] = {}
        for i, m in enumerate(models):
            if m.name in seen:
                raise _fail(f"model[{i}].name", f"duplicate name {m.name!r} (also model[{seen[m.name]}])")
            seen[m.name] = i
        return models, True
    return [_parse_model(raw_model, "model", base_dir, named=False)], False


def _parse_model(raw_table: Any, where: str, base_dir: str, named: bool) -> ModelTable:
    """One model table: its family's registration validates everything but family and name,
    so every model table, a single [model] too, is checked before a run writes anything."""
    t = _Table(raw_table, where)
    m = ModelTable(field_name=where)
    m.family = t.str_("family", "ngram")
    try:
        reg = registration(m.family)
    except CollapseError:
        if m.family in known_families():
            raise  # a known family that could not be loaded: its own message
        raise _fail(t.f("family"), unknown_family(m.family, what="value")) from None
    m.name = t.str_("name", m.family)
    if not m.name or any(c in m.name for c in "/\\ \t\n") or m.name.startswith("."):
        raise _fail(t.f("name"), f"must be a non-empty name without spaces or slashes, got {m.name!r}")
    m.settings = reg.validate(t, base_dir)
    t.finish()
    return m


def load_config(source: Union[str, os.PathLike, Mapping[str, Any], ExperimentConfig]) -> ExperimentConfig:
    """A path to a TOML file, a dict (as TOML would give) or an ExperimentConfig."""
    if isinstance(source, ExperimentConfig):
        return source
    if isinstance(source, Mapping):
        return parse_config(source, base_dir=os.getcwd())
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ConfigError(f"config: no such file: {path}")
    with open(path, "rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config: {path} is not valid TOML ({e})") from None
    return parse_config(raw, base_dir=os.path.dirname(os.path.abspath(path)))


def with_generations(cfg: ExperimentConfig, generations: int) -> ExperimentConfig:
    """The same config with experiment.generations replaced (``--generations G``)."""
    raw = copy.deepcopy(cfg.raw)
    raw.setdefault("experiment", {})["generations"] = generations
    return parse_config(raw, base_dir=cfg.base_dir)


# [experiment] settings that change how a run is executed or shown, never a result: they may
# differ on --resume (and generations may grow: a run extended to G equals one run to G).
RESUME_FREE = ("threads", "workers", "executor", "address", "progress")

# Lists of a study's axes: on --resume they may gain values (the study grows by the new
# cells; no cell's results depend on which other cells exist), never lose one. Models of a
# [[model]] array may be added too (matched by name), and an n-gram model's orders may grow.
GROWABLE = ("experiment.seeds", "experiment.paradigms", "experiment.alphas", "filter.keep_fractions")
GROWABLE_MODEL = ("orders",)


def _flat(tables: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in tables.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str, growable: Tuple[str, ...]) -> Optional[str]:
    """The first key whose value differs ("key: old -> new"), a growable list that lost a
    value included; None when new only adds."""
    a, b = _flat(old, prefix), _flat(new, prefix)
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if key[len(prefix):] in growable or key in growable:
            gone = [v for v in (va or []) if v not in (vb or [])]
            if gone:
                return (f"{key}: {va!r} -> {vb!r} (a study may grow on --resume, not lose cells: "
                        f"{gone[0]!r} is gone)")
        elif va != vb:
            return f"{key}: {va!r} -> {vb!r}"
    return None


def _model_conflict(old: Any, new: Any) -> Optional[str]:
    if isinstance(old, list) != isinstance(new, list):
        return ("model: a single [model] table and a [[model]] array name their cells differently; "
                "keep the form the run was started with")
    if not isinstance(old, list):
        return _diff(old or {}, new or {}, "model.", GROWABLE_MODEL)
    index = {m.get("name"): i for i, m in enumerate(new)}
    for m in old:
        if m.get("name") not in index:
            return f"model: {m.get('name')!r} is gone (a study may grow on --resume, not lose cells)"
        i = index[m.get("name")]
        conflict = _diff(m, new[i], f"model[{i}].", GROWABLE_MODEL)
        if conflict is not None:
            return conflict
    return None


def resume_conflict(run_config_text: str, cfg: ExperimentConfig) -> Optional[str]:
    """Why ``cfg`` cannot resume the run whose config.toml is ``run_config_text`` (the first
    setting that would change its existing cells, as "table.key: old -> new"), or None.
    ``cfg`` may add cells (GROWABLE, models) and generations."""
    old, new = tomllib.loads(run_config_text), tomllib.loads(to_toml(cfg))
    g_old = old.get("experiment", {}).get("generations")
    if isinstance(g_old, int) and cfg.experiment.generations < g_old:
        return f"experiment.generations: {g_old} -> {cfg.experiment.generations} (a run can be extended, not shortened)"
    for table in (old, new):
        for key in RESUME_FREE + ("generations",):
            table.get("experiment", {}).pop(key, None)
        table.pop("output", None)  # what is kept, not what is computed (OutputTable); older runs lack its newer keys
    conflict = _model_conflict(old.pop("model", None), new.pop("model", None))
    return conflict if conflict is not None else _diff(old, new, "", GROWABLE)


def to_toml(cfg: ExperimentConfig) -> str:
    """The resolved configuration as TOML (written into the run directory)."""
    tables = {
        "experiment": {
            "name": cfg.experiment.name, "generations": cfg.experiment.generations, "seeds": cfg.experiment.seeds,
            "paradigms": cfg.experiment.paradigms, "alphas": cfg.experiment.alphas,
            "synthetic_factor": cfg.experiment.synthetic_factor, "threads": cfg.experiment.threads,
            "workers": cfg.experiment.workers, "executor": cfg.experiment.executor,
            "address": cfg.experiment.address, "progress": cfg.experiment.progress,
        },
        "data": {k: v for k, v in vars(cfg.data).items()},
        "model": _model_toml(cfg.model, named=False),
        "filter": {k: v for k, v in vars(cfg.filter).items()
                   if cfg.filter.method != "none" or k not in ("keep_fractions", "max_perplexity")},
        "output": {"save_models": cfg.output.save_models, "model_every": cfg.output.model_every,
                   "corpus_format": cfg.output.corpus_format, "compression": cfg.output.compression,
                   "trackers": cfg.output.trackers},
    }
    own = SOURCE_KEYS.get(cfg.data.source, ())
    for k in {k for keys in SOURCE_KEYS.values() for k in keys} - set(own):
        tables["data"].pop(k, None)
    if cfg.data.source in EMBEDDED_SOURCES:
        for k in FILE_KEYS:
            tables["data"].pop(k, None)
    else:
        if cfg.data.heldout_path is not None or cfg.data.heldout_documents is not None:
            tables["data"].pop("heldout_fraction", None)
        if not cfg.data.accept_split:  # written only when set (a run directory from before it resumes)
            tables["data"].pop("accept_split")
    if cfg.downstream is not None:  # written only when given (a run directory from before it resumes)
        ds = vars(cfg.downstream).copy()
        ds["tasks"] = [{k: v for k, v in vars(task).items() if v is not None and k != "builtin"
                        and (not task.builtin or k in ("name", "max_train", "max_test", "epochs"))}
                       for task in cfg.downstream.tasks]
        tables["downstream"] = ds
    if cfg.multi_model:  # an array of tables: tomli-w writes it as [[model]] tables
        tables["model"] = [_model_toml(m, named=True) for m in cfg.models]
    return toml_text(tables)


def _model_toml(m: ModelTable, named: bool) -> Dict[str, Any]:
    head = {"name": m.name} if named else {}
    return {**head, "family": m.family, **registration(m.family).to_toml(m.settings)}
