"""A model family from outside the package joins a study (issue 24): collapse.register_family and
the collapse.families entry points, with a unigram model defined here."""

import json
import math
from importlib import metadata

import numpy as np
import pytest

import collapse
from collapse.errors import CollapseError
from collapse.experiment import loop, registry
from collapse.experiment.config import parse_config, tomllib
from collapse.experiment.family import FamilyRegistration, ModelFamily, RunContext, TrainedModel
from collapse.experiment.sources import load_real_data
from collapse.files import read_json, write_json


# -- a unigram family, written the way a user would -------------------------------------

class Unigram(TrainedModel):
    """Words drawn independently: p(w) = (count(w) + add) / Z over the training words, an
    unknown-word bucket and the end of the document (</s>, counted once per document)."""

    def __init__(self, words, counts, documents, add, max_length):
        self.words, self.counts = list(words), np.asarray(counts, dtype=np.float64)
        self.documents, self.add, self.max_length = int(documents), float(add), int(max_length)
        z = self.counts.sum() + self.documents + self.add * (len(self.words) + 2)
        self.log_p = np.log((self.counts + self.add) / z)
        self.log_unknown = math.log(self.add / z)
        self.log_end = math.log((self.documents + self.add) / z)
        self.index = {w: i for i, w in enumerate(self.words)}

    def sample(self, num_sequences, *, seed, context=None):
        # one random stream per document: the sample does not depend on the thread count
        cdf = np.cumsum(np.exp(np.append(self.log_p, self.log_end)))
        docs, cut = [], []
        for i in range(num_sequences):
            rng = np.random.default_rng([seed & 0xFFFFFFFF, i])
            doc = []
            while len(doc) < self.max_length:
                k = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), cdf.size - 1)
                if k == len(self.words):
                    break
                doc.append(self.words[k])
            docs.append(doc)
            cut.append(len(doc) == self.max_length)
        out = collapse.Corpus.from_documents(docs)
        out.truncated = np.asarray(cut, dtype=bool)
        return out

    def document_log_probs(self, corpus):
        ids = np.array([self.index.get(w, -1) for w in corpus.vocab.words], dtype=np.int64)[corpus.tokens]
        per_token = np.where(ids >= 0, self.log_p[np.maximum(ids, 0)], self.log_unknown)
        sums = np.add.reduceat(np.append(per_token, 0.0), corpus.offsets[:-1]) if corpus.num_tokens else 0.0
        sums = np.where(corpus.lengths() > 0, sums, 0.0)
        return sums + self.log_end

    def perplexity(self, corpus):
        return float(np.exp(-self.document_log_probs(corpus).sum() / (corpus.num_tokens + corpus.num_documents)))

    def num_parameters(self):
        return len(self.words)

    def save(self, directory):
        write_json(f"{directory}/unigram.json", {"words": self.words, "counts": self.counts.tolist(),
                                                 "documents": self.documents, "add": self.add,
                                                 "max_length": self.max_length})


class UnigramFamily(ModelFamily):
    name = "unigram"

    def __init__(self, add, max_length):
        self.add, self.max_length = add, max_length
        self.contexts = []  # what the loop handed to fit and sample, for the test

    def fit(self, corpus, *, seed, context=None):
        self.contexts.append(context)
        counts = np.bincount(corpus.tokens, minlength=len(corpus.vocab))
        used = [i for i in range(3, len(corpus.vocab)) if counts[i]]
        return Unigram([corpus.vocab.words[i] for i in used], counts[used], corpus.num_documents, self.add,
                       self.max_length)

    def load(self, directory):
        return Unigram(**read_json(f"{directory}/unigram.json"))


def _validate(table, base_dir):
    return {"add": table.float_("add", 1.0, 0.0, None, lo_open=True),
            "max_length": table.int_("max_length", 100, minimum=1)}


def unigram_registration():
    return FamilyRegistration(validate=_validate, factory=lambda settings, options: UnigramFamily(**settings))


LOADS = []


def counted_registration():
    """The entry point's target: counts how often it is loaded."""
    LOADS.append(1)
    return unigram_registration()


@pytest.fixture
def unigram():
    collapse.register_family("unigram", unigram_registration)
    yield
    registry._SOURCES.pop("unigram", None)
    registry._LOADED.pop("unigram", None)


CONFIG = """
[experiment]
generations = 1
paradigms = ["replace", "accumulate"]
workers = 1
progress = false

[data]
source = "grammar"
num_documents = 120
heldout_documents = 40

[model]
family = "unigram"
add = 0.5
max_length = 60
"""


def _reference_perplexity(train, heldout, add):
    """The unigram's held-out perplexity computed from the word counts directly."""
    counts = {}
    for t in train.tokens:
        w = train.vocab.words[t]
        counts[w] = counts.get(w, 0) + 1
    z = sum(counts.values()) + train.num_documents + add * (len(counts) + 2)
    total = sum(math.log((counts.get(heldout.vocab.words[t], 0) + add) / z) for t in heldout.tokens)
    total += heldout.num_documents * math.log((train.num_documents + add) / z)  # each document's </s>
    return math.exp(-total / (heldout.num_tokens + heldout.num_documents))


def test_a_family_registered_from_outside_runs_a_study(unigram, tmp_path, monkeypatch):
    config = tmp_path / "unigram.toml"
    config.write_text(CONFIG)
    made = []
    make = loop.make_family
    monkeypatch.setattr(loop, "make_family", lambda cfg, cell: made.append(make(cfg, cell)) or made[-1])
    out = tmp_path / "run"
    df = collapse.run_experiment(str(config), out=str(out))

    assert sorted(map(tuple, df[["paradigm", "generation"]].values.tolist())) == [
        ("accumulate", 0), ("accumulate", 1), ("replace", 0), ("replace", 1)]
    assert (df.family == "unigram").all() and (df.model == "unigram").all() and (df.status == "ok").all()
    assert df.order.isna().all()  # no sweep: one cell per paradigm
    # the common scale and the exact source's columns come from its document_log_probs
    assert np.isfinite(df.heldout_bits_per_word).all() and np.isfinite(df.kl_truth).all()
    assert (df.kl_truth > 0).all() and np.isfinite(df.self_ppl).all()
    # M_0 is fitted on R and scored on the held-out set: the perplexity from the counts themselves
    data = load_real_data(parse_config(_toml(CONFIG), base_dir=str(tmp_path)))
    gen0 = df[df.generation == 0]
    assert gen0.heldout_ppl.tolist() == pytest.approx([_reference_perplexity(data.real, data.heldout, 0.5)] * 2,
                                                      rel=1e-12)
    assert (gen0.params == len(set(data.real.vocab.words[t] for t in data.real.tokens))).all()

    # the loop handed every fit its run context: the generation's work folder and threads
    contexts = [c for family in made for c in family.contexts]
    assert contexts and all(isinstance(c, RunContext) and c.threads == 1 and c.rank == 0 for c in contexts)
    assert {c.work_dir.rsplit("/", 1)[-1] for c in contexts} == {"work_0000", "work_0001"}

    # the run directory: its settings in the manifest and config.toml, its models saved
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"] == [{"name": "unigram", "family": "unigram", "add": 0.5, "max_length": 60}]
    assert 'family = "unigram"' in (out / "config.toml").read_text()
    saved = UnigramFamily(0.5, 60).load(str(out / "replace_s0" / "gen_0001"))
    assert saved.perplexity(data.heldout) == pytest.approx(df[(df.paradigm == "replace") & (df.generation == 1)]
                                                           .heldout_ppl.item(), rel=1e-12)
    # config.toml parses back to the same settings: the run resumes and grows by a generation
    config.write_text(CONFIG.replace("generations = 1", "generations = 2"))
    grown = collapse.run_experiment(str(config), out=str(out), resume=True)
    assert sorted(set(grown.generation)) == [0, 1, 2]
    first = df.drop(columns=[c for c in df.columns if "seconds" in c]).reset_index(drop=True)
    again = grown[grown.generation < 2].drop(columns=[c for c in grown.columns if "seconds" in c])
    assert again.reset_index(drop=True).equals(first)


def _toml(text):
    return tomllib.loads(text)


def test_a_bad_setting_of_a_registered_family_names_the_field(unigram):
    raw = _toml(CONFIG)
    raw["model"]["add"] = 0
    with pytest.raises(CollapseError, match=r"^model\.add: must be > 0"):
        parse_config(raw)
    raw["model"] = {"family": "unigram", "ad": 1.0}
    with pytest.raises(CollapseError, match=r"^model\.ad: unknown key \(did you mean 'add'\?\)"):
        parse_config(raw)
    # a [downstream] study needs a family that can fine-tune or classify
    raw["model"] = {"family": "unigram"}
    raw["downstream"] = {"tasks": ["acceptability"]}
    with pytest.raises(CollapseError, match=r"^model\.family: the 'unigram' family has no downstream evaluation"):
        parse_config(raw)


def test_an_unknown_family_is_one_line_naming_the_known_ones():
    raw = _toml(CONFIG)
    raw["model"]["family"] = "unigrm"
    with pytest.raises(CollapseError) as e:
        parse_config(raw)
    message = str(e.value)
    assert "\n" not in message and message.startswith("model.family: unknown value 'unigrm'")
    assert "(choose from hf, ngram, transformer)" in message
    with pytest.raises(CollapseError, match=r"^unknown model family 'gpt' \(choose from hf, ngram, transformer\)$"):
        registry.registration("gpt")


def test_registration_is_checked():
    with pytest.raises(CollapseError, match="name must be"):
        collapse.register_family("Has Space", unigram_registration)
    with pytest.raises(CollapseError, match="FamilyRegistration or a function"):
        collapse.register_family("x", {"validate": None})


def test_a_factory_must_give_a_model_family(tmp_path):
    collapse.register_family("not-a-family", FamilyRegistration(validate=_validate, factory=lambda s, o: object()))
    try:
        raw = _toml(CONFIG)
        raw["model"] = {"family": "not-a-family"}
        with pytest.raises(CollapseError, match="factory gave object, not a collapse.experiment.family.ModelFamily"):
            collapse.run_experiment(raw, out=str(tmp_path / "run"))
    finally:
        registry._SOURCES.pop("not-a-family")
        registry._LOADED.pop("not-a-family", None)


def test_an_entry_point_registers_a_family_loaded_on_first_use(monkeypatch):
    ep = metadata.EntryPoint(name="unigram-ep", value=f"{__name__}:counted_registration",
                             group=registry.ENTRY_POINT_GROUP)
    other = metadata.EntryPoint(name="elsewhere", value="no_such_module_here:registration", group="other.group")
    asked = []

    def entry_points(**kw):
        asked.append(kw)
        return [e for e in (ep, other) if e.group == kw.get("group")]

    monkeypatch.setattr(registry.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_ENTRY_POINTS", {})
    monkeypatch.setattr(registry, "_LOADED", dict(registry._LOADED))
    monkeypatch.setattr(registry, "_entry_points_read", False)
    LOADS.clear()

    assert "unigram-ep" in registry.known_families() and "elsewhere" not in registry.known_families()
    assert asked == [{"group": "collapse.families"}] and not LOADS  # listed, not imported
    raw = _toml(CONFIG)
    raw["model"] = {"family": "unigram-ep", "add": 2.0}
    cfg = parse_config(raw)
    assert LOADS == [1] and cfg.model.settings == {"add": 2.0, "max_length": 100}
    family = loop.make_family(cfg, cfg.cells()[0])
    assert isinstance(family, UnigramFamily) and family.add == 2.0
    parse_config(raw)
    assert LOADS == [1]  # loaded once
    # an entry point whose module is missing: one line naming it
    broken = metadata.EntryPoint(name="broken", value="no_such_module_here:registration",
                                 group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_ENTRY_POINTS", {"broken": broken})
    with pytest.raises(CollapseError, match=r"family 'broken' \(entry point 'no_such_module_here:registration'"):
        registry.registration("broken")


def test_the_builtin_families_answer_through_their_registrations():
    ngram = registry.registration("ngram")
    assert ngram.resources.cheap_fit and not ngram.resources.torchrun and ngram.resources.device is None
    cfg = parse_config({"model": {"family": "ngram", "orders": [2, 3], "prune": [0, 1]}})
    assert [c.order for c in cfg.cells()] == [2, 3]
    assert cfg.model.settings == {"orders": [2, 3], "smoothing": "mkn", "prune": [0, 1]}
    assert loop.model_descriptions(cfg) == [{"name": "ngram", "family": "ngram", "orders": [2, 3],
                                             "smoothing": "mkn"}]


def test_a_duck_typed_model_gets_the_default_hooks():
    class Old:  # the protocol of earlier versions: no base class, no optional hooks
        def perplexity(self, corpus):
            return 3.0

    view = TrainedModel.adapt(Old())
    assert view.num_parameters() is None and view.extra_metrics(None) == {} and view.end_sampling() is None
    assert view.length_limit() == "the sampler's length limit" and view.document_log_probs(None) is None
    assert view.score_documents(None) == (None, 3.0)
    model = Unigram(["a"], [1], 1, 1.0, 5)
    assert TrainedModel.adapt(model) is model
