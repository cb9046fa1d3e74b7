"""The hf family (collapse.hf) against transformers itself, on tiny random models saved with save_pretrained.

No downloads: every model is made by collapse.hf.tiny (transformers' own initialisation,
saved into a temporary folder) with a BPE of the story grammar made by the tokenizers
library.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from collapse.data.storygrammar import sample_stories  # noqa: E402
from collapse.errors import CollapseError  # noqa: E402
from collapse.hf import HFFamily, HFModel  # noqa: E402
from collapse.hf.__main__ import main as hf_main  # noqa: E402
from collapse.hf.generate import prompt_documents  # noqa: E402
from collapse.hf.model import load_model  # noqa: E402
from collapse.hf.tiny import grammar_tokenizer, make_tiny, tiny_fields  # noqa: E402
from collapse.transformer.backend import GPTNeoLM, HFCausalLM  # noqa: E402
from collapse.transformer.model import GPTNeo  # noqa: E402

TYPES = ("gpt2", "gpt_neox", "opt", "llama")
TRAIN = dict(epochs=1, batch_size=8, micro_batch_size=8, context_length=64, max_new_tokens=16, progress=False,
             device="cpu", sample_batch_size=4, threads=1)


@pytest.fixture(scope="module")
def tokenizer():
    return grammar_tokenizer(vocab_size=300, documents=400)


@pytest.fixture(scope="module")
def real():
    return sample_stories(24, 1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer):
    """A tiny random folder of each type (and gpt_neo), made once for the module."""
    root = tmp_path_factory.mktemp("hf")
    return {t: make_tiny(str(root / t), t, positions=512, tokenizer=tokenizer, seed=3) for t in TYPES + ("gpt_neo",)}


def family(path=None, **settings):
    table = {**TRAIN, **settings}
    if path is not None:
        table["path"] = path
    return HFFamily.from_config(table)


def reference_log_probs(folder, tok, texts):
    """ln p(document) by transformers' own forward pass: end-of-text, the tokens, end-of-text."""
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).float().eval()
    out = []
    with torch.no_grad():
        for ids in tok.encode_batch(texts):
            seq = torch.tensor([[tok.eot_id, *ids.tolist(), tok.eot_id]])
            logp = torch.log_softmax(model(input_ids=seq).logits[0, :-1].double(), dim=-1)
            out.append(float(logp.gather(1, seq[0, 1:, None]).sum()))
    return np.array(out)


@pytest.mark.parametrize("model_type", TYPES)
def test_document_log_probs_are_transformers_forward(folders, real, model_type):
    fam = family(folders[model_type], context_length=512)  # every story in one window
    model = HFModel(load_model(folders[model_type]), fam.tokenizer_for(real), fam)
    texts = list(real.texts())[:6]
    ours = model.document_log_probs(real.select(np.arange(6)))
    np.testing.assert_allclose(ours, reference_log_probs(folders[model_type], model.tokenizer, texts), rtol=1e-5)


@pytest.mark.parametrize("model_type", TYPES)
@pytest.mark.parametrize("init", ["scratch", "pretrained", "previous"])
def test_two_generations_fit_sample_score(folders, real, model_type, init):
    fam = family(folders[model_type], init=init)
    fam.prepare(real)
    m0 = fam.fit(real, seed=1)
    synth = m0.sample(6, seed=2)
    assert synth.num_documents == 6
    m1 = fam.fit(synth if synth.num_tokens else real, seed=3, previous=m0)
    lp = m1.document_log_probs(real)
    assert lp.shape == (real.num_documents,) and np.all(np.isfinite(lp)) and np.all(lp < 0)
    assert 1.0 < m1.perplexity(real) < float("inf")
    assert m1.num_parameters() == sum(p.numel() for p in m1.model.parameters())


def _max_weight_change(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


def test_init_modes_start_where_they_say(folders, real):
    """With a vanishing learning rate a fit ends where it started: "previous" at the
    previous model, "pretrained" at the folder's weights, "scratch" elsewhere."""
    path = folders["llama"]
    folder_model = load_model(path).module
    pre = family(path, init="pretrained", lr=1e-12).fit(real, seed=1)
    assert _max_weight_change(pre.model, folder_model) < 1e-6
    scratch = family(path, init="scratch", lr=1e-12).fit(real, seed=1)
    assert _max_weight_change(scratch.model, folder_model) > 1e-3
    fam = family(path, init="previous")
    m0 = fam.fit(real, seed=1)
    assert _max_weight_change(m0.model, folder_model) > 1e-6  # trained from the folder's weights
    slow = family(path, init="previous", lr=1e-12)
    m1 = slow.fit(real, seed=5, previous=m0)
    assert _max_weight_change(m1.model, m0.model) < 1e-6
    assert m1.model is not m0.model  # a copy: the previous generation's model is left as it was


def test_architecture_builds_from_scratch_with_a_bpe_of_the_real_text(real):
    fields = tiny_fields("gpt2", positions=128)
    fam = family(architecture=fields, bpe_vocab_size=300)
    assert fam.init == "scratch"
    fam.prepare(real)
    model = fam.fit(real, seed=1)
    assert model.model.config.model_type == "gpt2"
    assert model.model.config.vocab_size == model.tokenizer.vocab_size == 300
    assert model.sample(3, seed=1).num_documents == 3


def test_real_prefix_documents_begin_with_prefixes_of_real_documents(folders, real):
    fam = family(folders["gpt2"], prompt="real-prefix", prefix_tokens=5)
    fam.prepare(real)
    model = fam.fit(real, seed=1)
    docs = model.sample_token_ids(10, seed=7)
    real_ids = model.tokenizer.encode_batch(list(real.texts()))
    chosen = prompt_documents(7, range(10), real.num_documents)
    assert len(set(chosen.tolist())) > 1
    for ids, j in zip(docs, chosen):
        assert ids[:5].tolist() == real_ids[j][:5].tolist()
    # the word-level documents sample() returns begin with the prompt's words (the last
    # prompt word may continue into the generated text)
    sampled = model.sample(10, seed=7)
    for doc, j in zip(sampled.documents(), chosen):
        words = [sampled.vocab.words[w] for w in doc]
        prompt_words = model.tokenizer.decode_batch([real_ids[j][:5]])[0].split()
        assert words[:len(prompt_words) - 1] == prompt_words[:-1]
        assert words[len(prompt_words) - 1].startswith(prompt_words[-1])


def test_real_prefix_needs_prepare(folders, real):
    fam = family(folders["gpt2"], prompt="real-prefix", prefix_tokens=3)
    model = HFModel(load_model(folders["gpt2"]), fam.tokenizer_for(real), fam)
    with pytest.raises(CollapseError, match="prepare"):
        model.sample(2, seed=1)


def test_beam_search_is_model_generate(folders, real):
    fam = family(folders["opt"], init="pretrained", prompt="real-prefix", prefix_tokens=4, num_beams=3,
                 max_new_tokens=8, sample_batch_size=3)
    fam.prepare(real)
    model = HFModel(load_model(folders["opt"]), fam.tokenizer_for(real), fam)
    ours = model.sample_token_ids(5, seed=11)
    reference = transformers.AutoModelForCausalLM.from_pretrained(folders["opt"], local_files_only=True).eval()
    eot = model.tokenizer.eot_id
    real_ids = model.tokenizer.encode_batch(list(real.texts()))
    for ids, j in zip(ours, prompt_documents(11, range(5), real.num_documents)):
        prompt = torch.tensor([[eot, *real_ids[j][:4].tolist()]])
        with torch.no_grad():
            seq = reference.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), num_beams=3,
                                     do_sample=False, max_new_tokens=8, eos_token_id=eot, pad_token_id=eot)
        new = seq[0, prompt.size(1):].tolist()
        new = new[:new.index(eot)] if eot in new else new
        assert ids.tolist() == real_ids[j][:4].tolist() + new


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_pure_sampling_does_not_depend_on_the_batch(folders, real, model_type):
    tok = None
    out = []
    for batch in (1, 7):
        fam = family(folders[model_type], sample_batch_size=batch, max_new_tokens=24)
        tok = tok or fam.tokenizer_for(real)
        model = HFModel(load_model(folders[model_type]), tok, fam)
        out.append([d.tolist() for d in model.sample_token_ids(9, seed=5)])
    assert out[0] == out[1]
    assert len({tuple(d) for d in out[0]}) > 1


def test_saved_generation_loads_with_transformers(folders, real, tmp_path):
    fam = family(folders["gpt_neox"], init="pretrained")
    model = fam.fit(real, seed=1)
    out = tmp_path / "gen"
    os.makedirs(out)
    (out / "corpus.txt").write_text("kept\n")  # the folder already holds the generation's corpus
    model.save(str(out))
    assert (out / "corpus.txt").read_text() == "kept\n"
    assert not [n for n in os.listdir(out) if ".tmp." in n]
    loaded = transformers.AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    ids = torch.tensor([[model.tokenizer.eot_id, 5, 17, 42, 9]])
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(input_ids=ids).logits.numpy(), model.lm.logits(ids).numpy())
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    text = next(iter(real.texts()))
    assert hf_tok(text, add_special_tokens=False)["input_ids"] == model.tokenizer.encode_batch([text])[0].tolist()
    back = HFFamily.load(str(out))
    np.testing.assert_array_equal(back.document_log_probs(real), model.document_log_probs(real))
    assert [d.tolist() for d in back.sample_token_ids(4, seed=2)] == [d.tolist() for d in model.sample_token_ids(4, seed=2)]


def test_gpt_neo_fast_path_and_hf_adapter_agree(folders, real):
    path = folders["gpt_neo"]
    fast, adapter = GPTNeoLM(GPTNeo.from_pretrained(path).eval()), HFCausalLM(load_model(path).module.eval())
    ids = torch.tensor([[0, 5, 17, 42, 9, 100, 3, 7]])
    with torch.no_grad():
        np.testing.assert_allclose(fast.logits(ids).numpy(), adapter.logits(ids).numpy(), atol=1e-5)
        a, cache_a = fast.next_logits(ids[:, :5], fast.new_cache(1, 16))
        b, cache_b = adapter.next_logits(ids[:, :5], adapter.new_cache(1, 16))
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
        a, _ = fast.next_logits(ids[:, 5:6], cache_a)
        b, _ = adapter.next_logits(ids[:, 5:6], cache_b)
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    from collapse.transformer.score import document_log_probs

    docs = grammar_tokenizer(vocab_size=300, documents=400).encode_batch(list(real.texts())[:5])
    np.testing.assert_allclose(document_log_probs(fast, docs, 0), document_log_probs(adapter, docs, 0), rtol=1e-5)


def _one_line_error(table, match):
    with pytest.raises(CollapseError, match=match) as info:
        HFFamily.from_config({**TRAIN, **table})
    assert "\n" not in str(info.value)


def test_bad_path_is_one_line(tmp_path, folders):
    _one_line_error({"path": str(tmp_path / "nowhere")}, "no such model folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error({"path": str(empty)}, "missing config.json")
    partial = tmp_path / "partial"
    shutil.copytree(folders["gpt2"], partial)
    os.remove(partial / "model.safetensors")
    _one_line_error({"path": str(partial)}, "missing weights")
    os.remove(partial / "tokenizer.json")
    _one_line_error({"path": str(partial), "init": "scratch"}, "missing tokenizer files")


def test_unknown_model_type_is_one_line(folders, tmp_path):
    _one_line_error({"architecture": {"model_type": "lama", "hidden_size": 32}}, "unknown model_type 'lama'.*llama")
    _one_line_error({"architecture": {"model_type": "vit"}}, "not a causal language model")
    _one_line_error({"architecture": {"hidden_size": 32}}, "model_type")
    odd = tmp_path / "odd"
    shutil.copytree(folders["gpt2"], odd)
    cfg = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**cfg, "model_type": "my_own_lm"}))
    _one_line_error({"path": str(odd)}, "unknown model_type 'my_own_lm'")


def test_path_with_architecture_is_one_line(folders):
    _one_line_error({"path": folders["gpt2"], "architecture": {"model_type": "gpt2"}}, "exclude each other")
    _one_line_error({}, "give path")
    _one_line_error({"architecture": {"model_type": "gpt2"}, "init": "pretrained"}, "needs path")
    _one_line_error({"path": folders["gpt2"], "prompt": "prefix"}, "prompt must be")
    _one_line_error({"path": folders["gpt2"], "num_beams": 2, "temperature": 0.7}, "deterministic")
    _one_line_error({"path": folders["gpt2"], "context_length": 4096}, "exceeds the model.s 512 positions")
    _one_line_error({"path": folders["gpt2"], "lr_typo": 1}, "unknown model setting 'lr_typo'")


def test_folder_needing_custom_code_is_refused(folders, tmp_path):
    custom = tmp_path / "custom"
    shutil.copytree(folders["llama"], custom)
    cfg = json.loads((custom / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_mine.MyModel"}
    (custom / "config.json").write_text(json.dumps(cfg))
    (custom / "modeling_mine.py").write_text("raise SystemExit('remote code ran')\n")
    _one_line_error({"path": str(custom)}, "needs custom code")


def test_make_tiny_command(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert hf_main(["make-tiny", str(out), "--model-type", "llama", "--vocab-size", "260"]) == 0
    model = transformers.AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True)
    assert model.config.model_type == "llama" and model.config.vocab_size == 260
    assert hf_main(["make-tiny", str(out)]) == 2  # not an empty folder
    assert hf_main(["make-tiny", str(tmp_path / "x"), "--model-type", "bert"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("collapse.hf: ") for line in err)


def test_a_fit_resumed_from_its_checkpoint_ends_with_the_same_weights(folders, real, tmp_path, monkeypatch):
    """Training state saved every step (train_lm's checkpoints, shared with the GPT-Neo
    family); the state after step 2 put back into a fresh work folder: the resumed fit
    ends bit for bit where the uninterrupted one did (dropout on: GPT-2's default 0.1)."""
    from collapse.transformer import train as train_module

    saved_states = []
    real_save = train_module.save_training_state

    def keep_step_two(path, model, optimizer, scaler, position):
        real_save(path, model, optimizer, scaler, position)
        if position["steps"] == 2 and optimizer is not None:
            saved_states.append(open(path, "rb").read())

    monkeypatch.setattr(train_module, "save_training_state", keep_step_two)
    settings = dict(init="pretrained", checkpoint_steps=1, epochs=2, batch_size=4, micro_batch_size=2)
    whole = family(folders["gpt2"], **settings).fit(real, seed=4, work_dir=str(tmp_path / "a"))
    assert whole.stats.steps > 4 and len(saved_states) == 1
    fam = family(folders["gpt2"], **settings)
    fit_dir = fam.checkpoint_policy(4, str(tmp_path / "b")).directory
    os.makedirs(fit_dir)
    with open(os.path.join(fit_dir, "train_state.pt"), "wb") as f:
        f.write(saved_states[0])
    resumed = fam.fit(real, seed=4, work_dir=str(tmp_path / "b"))
    assert resumed.stats.steps == whole.stats.steps
    assert _max_weight_change(resumed.model, whole.model) == 0.0


def test_paper_perplexity_per_story_is_transformers_forward(folders, real):
    """The paper's current evaluate_ppl.py on an hf model (shared scoring code): each story's
    tokens on their own, its first token not scored, exp(token-weighted mean NLL)."""
    fam = family(folders["llama"], paper_perplexity="per-story")
    model = HFModel(load_model(folders["llama"]), fam.tokenizer_for(real), fam)
    reference = transformers.AutoModelForCausalLM.from_pretrained(folders["llama"], local_files_only=True).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ids in model.tokenizer.encode_batch(list(real.texts())):  # every story fits the 512 positions
            seq = torch.from_numpy(ids)[None]
            logp = torch.log_softmax(reference(input_ids=seq).logits[0, :-1].double(), dim=-1)
            total -= float(logp.gather(1, seq[0, 1:, None]).sum())
            count += ids.size - 1
    assert model.extra_metrics(real)["paper_ppl"] == pytest.approx(np.exp(total / count), rel=1e-5)


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_dropping_finished_rows_keeps_the_others_caches(folders, model_type):
    """HFCausalLM.keep (what the sampler does when documents end): rows 0 and 2 of a batch
    of 3, cut down after 3 steps, go on exactly as a batch of those 2 rows alone."""
    lm = HFCausalLM(load_model(folders[model_type]).module.eval())
    steps = torch.tensor([[1, 5, 9], [2, 6, 10], [3, 7, 11], [4, 8, 12]])  # (step, row)
    with torch.no_grad():
        cache = lm.new_cache(3, 8)
        for s in range(3):
            _, cache = lm.next_logits(steps[s][:, None], cache)
        cache = lm.keep(cache, torch.tensor([0, 2]))
        cut, _ = lm.next_logits(steps[3][[0, 2]][:, None], cache)
        alone = lm.new_cache(2, 8)
        for s in range(4):
            logits, alone = lm.next_logits(steps[s][[0, 2]][:, None], alone)
    np.testing.assert_allclose(cut.numpy(), logits.numpy(), atol=1e-6)


def test_prompted_documents_count_only_new_tokens_against_the_limit(folders):
    """A real document shorter than prefix_tokens prompts with all its tokens; a document
    is truncated when its new tokens (after the prompt) reach max_new_tokens."""
    from collapse.data.corpus import Corpus

    short_real = Corpus.from_texts(["Tom", "Lily had a big red ball and she liked it very much ."] * 3)
    fam = family(folders["gpt2"], prompt="real-prefix", prefix_tokens=6, max_new_tokens=3)
    fam.prepare(short_real)
    model = HFModel(load_model(folders["gpt2"]), fam.tokenizer_for(short_real), fam)
    prompts = fam.prefixes(9)
    sizes = {int(prompts(i).size) for i in range(12)}
    assert min(sizes) < 6 and max(sizes) == 6  # both kinds of real document were drawn
    ids = model.sample_token_ids(12, seed=9)
    flags = model.sample(12, seed=9).truncated
    expected = [d.size - prompts(i).size >= 3 for i, d in enumerate(ids)]
    assert flags.tolist() == expected and any(expected)
