"""The embedded default corpus: a stochastic story grammar with a known exact distribution.

Design (see docs/experiment.md, "The embedded corpus"):

* Sentence templates (opening, middle, closing) are sequences of literal tokens and word
  *classes* (NAME, ANIMAL, OBJECT, PLACE, FEELING, ADJ, MOVE). Each class is a fixed word
  list with Zipf weights; NAME has a long tail of generated names, so the vocabulary has
  many rare words.
* The templates of each section are merged into a prefix trie, and the trie is compiled
  into a **probabilistic deterministic finite automaton** (PDFA): every state has an
  explicit distribution over the next token, and the next state is a function of (state,
  token). A story is: one opening sentence, one or more middle sentences (after each,
  another follows with probability ``continue_prob``), one closing sentence, then ``</s>``.
* Determinism (one path per token sequence) is checked when the grammar is built: class
  word lists are disjoint from each other and from literal tokens, and the first tokens of
  middle and closing sentences are disjoint. Hence the probability of any token sequence
  is the product of the transition probabilities along its single path (0 if it has
  none): **exact**, with no parsing ambiguity.
* Because the PDFA is an absorbing Markov chain over a few hundred states, the expected
  number of visits of every state follows from one linear solve, which gives the exact
  expected unigram counts (hence the exact unigram marginal of the source), the exact
  expected story length, and the exact entropy of the story distribution
  (sum over states of visits x entropy of the state's next-token distribution).

Sampling is vectorised over stories (numpy), with a ``numpy.random.Generator(Philox)``
keyed by the seed: the same seed and size give the same stories on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..errors import CollapseError
from .corpus import EOS, Corpus, Vocab

# ---------------------------------------------------------------------------------------
# Word classes. Order matters: earlier words get larger Zipf weights.

_COMMON_NAMES = ["Lily", "Tom", "Ben", "Mia", "Sue", "Max", "Anna", "Sam", "Lucy", "Jack", "Tim", "Emma",
                 "Zoe", "Leo", "Ella", "Jake", "Kate", "Mike", "Amy", "Bob"]
_SYLLABLES = ["ba", "be", "bo", "da", "di", "do", "fe", "fi", "ga", "go", "ja", "jo", "ka", "ki", "ko", "la",
              "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "pa", "pe", "pi", "po",
              "ra", "re", "ri", "ro", "ru", "sa", "se", "si", "so", "ta", "te", "ti", "to", "va", "vi", "wa",
              "ya", "yo", "za", "zi"]

ANIMALS = ["dog", "cat", "bird", "bunny", "frog", "duck", "bear", "fox", "mouse", "fish", "owl", "puppy",
           "kitten", "lion", "pig", "cow", "horse", "sheep", "turtle", "squirrel", "deer", "goat", "snail",
           "bee", "butterfly", "monkey", "elephant", "tiger", "giraffe", "penguin"]
OBJECTS = ["ball", "toy", "kite", "box", "hat", "book", "cake", "doll", "car", "flower", "apple", "stick",
           "rock", "boat", "cup", "shoe", "bike", "drum", "blanket", "truck", "spoon", "balloon", "cookie",
           "crayon", "puzzle", "robot", "shell", "feather", "key", "map", "bell", "basket", "ring", "leaf",
           "button", "sock", "pillow", "lamp", "clock", "bucket", "wagon", "whistle", "crown", "jar", "kettle",
           "candle", "mitten", "scarf", "teapot", "marble", "acorn", "pebble", "ribbon", "carrot", "banana",
           "lemon", "pear", "plum", "cherry", "muffin", "sandwich", "pie", "jelly", "honey", "sticker",
           "helmet", "ladder", "shovel", "umbrella", "rope", "net", "sled", "trumpet", "violin", "piano",
           "brush", "comb", "mirror", "paintbrush", "pencil", "notebook", "envelope", "stamp", "compass",
           "lantern", "globe", "telescope", "magnet", "yo-yo", "rattle", "whisk"]
PLACES = ["park", "garden", "forest", "house", "school", "beach", "pond", "yard", "shop", "farm", "river",
          "hill", "kitchen", "library", "zoo", "meadow", "cave", "field", "lake", "castle", "playground",
          "barn", "village", "town", "jungle", "desert", "island", "valley", "orchard", "harbor"]
FEELINGS = ["happy", "sad", "scared", "excited", "angry", "surprised", "proud", "sleepy", "curious", "brave",
            "shy", "worried", "calm", "lonely", "grumpy", "silly", "thankful", "upset", "glad", "bored"]
ADJECTIVES = ["big", "red", "shiny", "small", "soft", "blue", "pretty", "old", "new", "green", "yellow",
              "tiny", "funny", "pink", "round", "fluffy", "purple", "huge", "bright", "dark", "smooth",
              "sparkly", "striped", "spotted", "golden", "wooden", "shiny-green", "cozy", "bumpy"]
MOVES = ["ran", "walked", "jumped", "hopped", "skipped", "raced", "danced", "climbed", "rushed", "wandered"]

# Templates: tokens in UPPER CASE are classes; everything else is a literal token.
# (weight, template). Weights are relative within a section.
OPENING = [
    (4.0, "Once upon a time , there was a little girl named NAME ."),
    (3.0, "Once upon a time , there was a little boy named NAME ."),
    (3.0, "Once upon a time , there was a ADJ ANIMAL named NAME ."),
    (2.0, "One day , NAME went to the PLACE ."),
    (2.0, "One day , a ADJ ANIMAL found a OBJECT ."),
    (1.5, "There was once a ANIMAL who lived in a PLACE ."),
    (1.0, "There was once a girl who loved her OBJECT ."),
]
MIDDLE = [
    (3.0, "NAME liked to play with a ADJ OBJECT ."),
    (2.0, "NAME saw a OBJECT in the PLACE ."),
    (2.0, "NAME felt FEELING ."),
    (2.0, "She was very FEELING ."),
    (2.0, "He was very FEELING ."),
    (2.0, 'NAME said , " I want to play with the OBJECT ! "'),
    (1.5, '" Can I have the OBJECT ? " asked NAME .'),
    (1.5, "They played in the PLACE all day ."),
    (1.5, "The ANIMAL was FEELING ."),
    (1.5, "The ANIMAL wanted to play too ."),
    (1.0, "NAME and NAME went to the PLACE together ."),
    (1.5, "NAME found a ADJ OBJECT under a tree ."),
    (1.0, "It was a ADJ day ."),
    (1.5, "Then , NAME MOVE to the PLACE ."),
    (1.0, "Then , the ANIMAL MOVE away ."),
    (1.0, "NAME wanted to share the OBJECT with NAME ."),
    (1.0, "The OBJECT was ADJ and ADJ ."),
    (1.0, "NAME did not want to go home ."),
    (1.0, 'Mom said , " Be careful , NAME ! "'),
    (1.0, 'NAME smiled and said , " Thank you ! "'),
    (1.0, "She gave the OBJECT to her friend NAME ."),
    (1.0, "He looked for his OBJECT in the PLACE ."),
    (0.8, "The sun was hot and the sky was clear ."),
    (0.8, 'NAME asked , " Do you want to be my friend ? "'),
    (0.8, "They laughed and played with the ADJ OBJECT ."),
]
CLOSING = [
    (3.0, "In the end , NAME was very FEELING ."),
    (2.0, "From that day on , NAME and NAME were best friends ."),
    (2.0, "And they all lived happily ever after ."),
    (1.5, "At the end of the day , NAME went home and slept ."),
    (1.0, "In the end , the ANIMAL and NAME played with the OBJECT every day ."),
]


def generated_names(count: int) -> List[str]:
    """``count`` made-up names from two or three syllables, in a fixed order (no seed)."""
    rng = np.random.Generator(np.random.Philox(20240601))
    seen = set(_COMMON_NAMES)
    out: List[str] = []
    while len(out) < count:
        k = 2 if rng.random() < 0.7 else 3
        name = "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), size=k)).capitalize()
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return w / w.sum()


@dataclass
class _Edge:
    word: int
    prob: float
    target: int


class StoryGrammar:
    """The story source: a PDFA over tokens with exact probabilities.

    num_names: size of the NAME class (20 common names, then generated ones): the Zipf tail.
    zipf: the Zipf exponent of every class's word weights.
    continue_prob: probability that another middle sentence follows a middle sentence.
    """

    def __init__(self, num_names: int = 1000, zipf: float = 1.1, continue_prob: float = 0.8) -> None:
        if num_names < len(_COMMON_NAMES):
            raise CollapseError(f"grammar: num_names must be at least {len(_COMMON_NAMES)}, got {num_names}")
        if not (zipf > 0):
            raise CollapseError(f"grammar: zipf must be > 0, got {zipf}")
        if not (0.0 < continue_prob < 1.0):
            raise CollapseError(f"grammar: continue_prob must be in (0, 1), got {continue_prob}")
        self.num_names = int(num_names)
        self.zipf = float(zipf)
        self.continue_prob = float(continue_prob)
        names = _COMMON_NAMES + generated_names(self.num_names - len(_COMMON_NAMES))
        self.classes: Dict[str, List[str]] = {
            "NAME": names, "ANIMAL": ANIMALS, "OBJECT": OBJECTS, "PLACE": PLACES, "FEELING": FEELINGS,
            "ADJ": ADJECTIVES, "MOVE": MOVES,
        }
        self.class_probs = {c: zipf_weights(len(ws), self.zipf) for c, ws in self.classes.items()}
        self._build()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        words: List[str] = [EOS]
        word_id: Dict[str, int] = {EOS: 0}

        def wid(w: str) -> int:
            i = word_id.get(w)
            if i is None:
                i = len(words)
                words.append(w)
                word_id[w] = i
            return i

        owner: Dict[str, str] = {}
        for c, ws in self.classes.items():
            for w in ws:
                if w in owner:
                    raise CollapseError(f"grammar: word {w!r} is in classes {owner[w]} and {c}")
                owner[w] = c
                wid(w)
        for section in (OPENING, MIDDLE, CLOSING):
            for _, template in section:
                for tok in template.split():
                    if tok in self.classes:
                        continue
                    if tok in owner:
                        raise CollapseError(f"grammar: literal {tok!r} is also in class {owner[tok]}")
                    wid(tok)

        # A trie per section: node = dict(label -> (weight, child)); label is a class name or
        # a literal. Leaves (sentence ends) are resolved to the section's continuation.
        class Node:
            __slots__ = ("children", "weight")

            def __init__(self) -> None:
                self.children: Dict[str, Tuple[float, "Node"]] = {}
                self.weight = 0.0

        def trie(section: Sequence[Tuple[float, str]]) -> Node:
            root = Node()
            for weight, template in section:
                node = root
                node.weight += weight
                for tok in template.split():
                    w, child = node.children.get(tok, (0.0, None))
                    if child is None:
                        child = Node()
                    node.children[tok] = (w + weight, child)
                    child.weight += weight
                    node = child
            return root

        roots = {"opening": trie(OPENING), "middle": trie(MIDDLE), "closing": trie(CLOSING)}
        # States: one per trie node (except leaves, which are replaced by their continuation),
        # plus JUNCTION (after a middle sentence) and FINAL (emits </s>). A state's outgoing
        # distribution is a list of (label, prob, target) where target is a Node or a marker.
        state_of: Dict[int, int] = {}
        node_list: List[object] = []

        def state(key: object) -> int:
            k = id(key)
            if k not in state_of:
                state_of[k] = len(node_list)
                node_list.append(key)
            return state_of[k]

        JUNCTION, FINAL = "JUNCTION", "FINAL"
        continuation = {"opening": roots["middle"], "middle": JUNCTION, "closing": FINAL}
        self.start_state = state(roots["opening"])
        section_of: Dict[int, str] = {}
        for name, root in roots.items():
            stack = [root]
            while stack:
                n = stack.pop()
                section_of[id(n)] = name
                stack.extend(child for _, child in n.children.values())

        edges: List[List[_Edge]] = []
        todo = [roots["opening"]]
        done = set()
        while todo:
            key = todo.pop()
            s = state(key)
            if s in done:
                continue
            done.add(s)
            while len(edges) <= s:
                edges.append([])
            if key is FINAL:
                edges[s] = [_Edge(word_id[EOS], 1.0, -1)]
                continue
            if key is JUNCTION:
                parts = [(self.continue_prob, roots["middle"]), (1.0 - self.continue_prob, roots["closing"])]
            else:
                parts = [(1.0, key)]
            out: List[_Edge] = []
            for share, node in parts:
                sec = section_of[id(node)]
                for label, (weight, child) in sorted(node.children.items()):
                    p_label = share * weight / node.weight
                    target_key = child if child.children else continuation[sec]
                    t = state(target_key)
                    todo.append(target_key)
                    if label in self.classes:
                        for w, pw in zip(self.classes[label], self.class_probs[label]):
                            out.append(_Edge(word_id[w], p_label * float(pw), t))
                    else:
                        out.append(_Edge(word_id[label], p_label, t))
            seen: Dict[int, int] = {}
            for e in out:
                if e.word in seen:
                    raise CollapseError(f"grammar: state {s} is ambiguous on token {words[e.word]!r}")
                seen[e.word] = 1
            edges[s] = out

        self.words = words            # grammar word ids: 0 = </s>, then class words, literals
        self.num_states = len(edges)
        ptr = np.zeros(self.num_states + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(e) for e in edges])
        self.edge_ptr = ptr
        self.edge_word = np.array([e.word for es in edges for e in es], dtype=np.int64)
        self.edge_prob = np.array([e.prob for es in edges for e in es], dtype=np.float64)
        self.edge_target = np.array([e.target for es in edges for e in es], dtype=np.int64)
        self.edge_state = np.repeat(np.arange(self.num_states), np.diff(ptr))
        sums = np.add.reduceat(self.edge_prob, ptr[:-1])
        if not np.allclose(sums, 1.0, atol=1e-12):
            raise CollapseError("grammar: a state's next-token probabilities do not sum to 1")
        # Search keys: state index + cumulative probability within the state (last = s + 1).
        cum = np.cumsum(self.edge_prob)
        base = np.concatenate([[0.0], cum])[ptr[:-1]]
        within = cum - np.repeat(base, np.diff(ptr))
        within[ptr[1:] - 1] = 1.0
        self._search_key = self.edge_state + within
        self._edge_logp = np.log(self.edge_prob)
        self._transition = {(int(s), int(w)): i for i, (s, w) in enumerate(zip(self.edge_state, self.edge_word))}
        self._exact = None

    # -- sampling -------------------------------------------------------------------------
    def sample_ids(self, num_documents: int, seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(grammar word ids without </s>, offsets, exact natural-log probability per story)."""
        if num_documents < 0:
            raise CollapseError(f"num_documents must be >= 0, got {num_documents}")
        rng = np.random.Generator(np.random.Philox(int(seed) & 0xFFFFFFFFFFFFFFFF))
        n = int(num_documents)
        state = np.full(n, self.start_state, dtype=np.int64)
        active = np.arange(n, dtype=np.int64)
        logp = np.zeros(n, dtype=np.float64)
        story_parts, word_parts = [], []
        while active.size:
            u = rng.random(active.size)
            e = np.searchsorted(self._search_key, state + u, side="right")
            e = np.minimum(e, self.edge_ptr[state + 1] - 1)  # guards the u -> 1 edge case
            np.add.at(logp, active, self._edge_logp[e])
            w = self.edge_word[e]
            keep = w != 0  # 0 = </s>: the story ends
            story_parts.append(active[keep])
            word_parts.append(w[keep])
            state = self.edge_target[e][keep]
            active = active[keep]
        stories = np.concatenate(story_parts) if story_parts else np.zeros(0, np.int64)
        ws = np.concatenate(word_parts) if word_parts else np.zeros(0, np.int64)
        order = np.argsort(stories, kind="stable")
        lens = np.bincount(stories, minlength=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        return ws[order], offsets, logp

    def sample(self, num_documents: int, seed: int) -> Tuple[Corpus, np.ndarray]:
        """(Corpus of num_documents stories, exact natural-log probability of each story).

        The Corpus vocabulary is the words that occur, in grammar order (deterministic)."""
        ids, offsets, logp = self.sample_ids(num_documents, seed)
        present = np.zeros(len(self.words), dtype=bool)
        present[ids] = True
        present[0] = False
        used = np.flatnonzero(present)
        vocab = Vocab(self.words[i] for i in used)
        table = np.zeros(len(self.words), dtype=np.uint32)
        table[used] = np.arange(3, 3 + used.size, dtype=np.uint32)
        return Corpus(table[ids], offsets, vocab), logp

    def texts(self, num_documents: int, seed: int) -> List[str]:
        corpus, _ = self.sample(num_documents, seed)
        return list(corpus.texts())

    # -- exact probabilities ----------------------------------------------------------------
    def log_prob(self, tokens: Sequence[str]) -> float:
        """Exact natural-log probability of one story (tokens without </s>); -inf if impossible."""
        s, total = self.start_state, 0.0
        index = {w: i for i, w in enumerate(self.words)} if not hasattr(self, "_index") else self._index
        self._index = index
        for tok in list(tokens) + [EOS]:
            w = index.get(tok)
            e = self._transition.get((s, w)) if w is not None else None
            if e is None:
                return -math.inf
            total += self._edge_logp[e]
            s = int(self.edge_target[e])
        return total

    def corpus_log_probs(self, corpus: Corpus) -> np.ndarray:
        """Exact natural-log probability of every document of a Corpus (-inf where impossible)."""
        words = corpus.vocab.words
        return np.array([self.log_prob([words[i] for i in doc]) for doc in corpus.documents()])

    def exact(self) -> "ExactStats":
        """Exact expected visits, unigram marginal, length and entropy of the source."""
        if self._exact is None:
            # Expected visits v solve v (I - Q) = start (Q: transitions between live states).
            # Solved by Gaussian elimination written with elementwise numpy operations and
            # pairwise sums, not LAPACK: the result is then bit-identical whatever BLAS
            # threading a process has (Ray workers run single-threaded), which the sweep's
            # equality test relies on. I - Q is an M-matrix, so no pivoting is needed.
            S = self.num_states
            live = self.edge_target >= 0
            Q = np.zeros((S, S))
            np.add.at(Q, (self.edge_state[live], self.edge_target[live]), self.edge_prob[live])
            A = (np.eye(S) - Q).T.copy()
            b = np.zeros(S)
            b[self.start_state] = 1.0
            for k in range(S - 1):
                factors = A[k + 1:, k] / A[k, k]
                A[k + 1:, k:] -= np.multiply.outer(factors, A[k, k:])
                b[k + 1:] -= factors * b[k]
            visits = np.zeros(S)
            for k in range(S - 1, -1, -1):
                visits[k] = (b[k] - np.sum(A[k, k + 1:] * visits[k + 1:])) / A[k, k]
            edge_visits = visits[self.edge_state] * self.edge_prob
            counts = np.bincount(self.edge_word, weights=edge_visits, minlength=len(self.words))
            expected_len = float(counts[1:].sum())
            state_entropy = -np.add.reduceat(self.edge_prob * self._edge_logp, self.edge_ptr[:-1])
            story_entropy = float(np.sum(visits * state_entropy))
            self._exact = ExactStats(visits=visits, expected_counts=counts[1:], words=self.words[1:],
                                     expected_length=expected_len, story_entropy=story_entropy,
                                     entropy_per_token=story_entropy / (expected_len + 1.0))
        return self._exact

    def describe(self) -> Dict[str, object]:
        ex = self.exact()
        return {"num_names": self.num_names, "zipf": self.zipf, "continue_prob": self.continue_prob,
                "num_states": self.num_states, "vocabulary": len(self.words) - 1,
                "expected_length": ex.expected_length, "entropy_nats_per_token": ex.entropy_per_token}


@dataclass
class ExactStats:
    visits: np.ndarray            # expected visits of every PDFA state per story
    expected_counts: np.ndarray   # expected count of every word (grammar order, </s> excluded) per story
    words: List[str]
    expected_length: float        # expected tokens per story (without </s>)
    story_entropy: float          # H(story) in nats
    entropy_per_token: float      # H(story) / (E[length] + 1): nats per token counting </s>

    def unigram(self) -> Dict[str, float]:
        """Exact unigram marginal: expected count of w / expected length (</s> excluded)."""
        p = self.expected_counts / self.expected_length
        return dict(zip(self.words, p.tolist()))


_CACHE: Dict[Tuple[int, float, float], StoryGrammar] = {}


def get_grammar(num_names: int = 1000, zipf: float = 1.1, continue_prob: float = 0.8) -> StoryGrammar:
    """A cached grammar (building one takes a fraction of a second)."""
    key = (int(num_names), float(zipf), float(continue_prob))
    g = _CACHE.get(key)
    if g is None:
        g = _CACHE[key] = StoryGrammar(*key)
    return g


def sample_stories(num_documents: int, seed: int, num_names: int = 1000, zipf: float = 1.1,
                   continue_prob: float = 0.8) -> Corpus:
    """num_documents stories from the default grammar (deterministic per seed)."""
    return get_grammar(num_names, zipf, continue_prob).sample(num_documents, seed)[0]
