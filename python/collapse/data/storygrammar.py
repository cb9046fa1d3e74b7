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
  (sum over states of visits x entropy of the state's next-token distribution). That
  computation, the draws and the Corpus a sample becomes are shared with the code grammar
  (collapse.data.exactsource); this module builds the automaton and parses a story on it.

Sampling is vectorised over stories (numpy), with a ``numpy.random.Generator(Philox)``
keyed by the seed: the same seed and size give the same stories on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..errors import CollapseError
from .corpus import EOS, Corpus
from .exactsource import EdgeTable, ExactSource, cached, gather_documents, made_up_words, seeded_generator, zipf_weights

# ---------------------------------------------------------------------------------------
# Word classes. Order matters: earlier words get larger Zipf weights.

_COMMON_NAMES = ["Lily", "Tom", "Ben", "Mia", "Sue", "Max", "Anna", "Sam", "Lucy", "Jack", "Tim", "Emma",
                 "Zoe", "Leo", "Ella", "Jake", "Kate", "Mike", "Amy", "Bob"]
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
    return made_up_words(count, _COMMON_NAMES, key=20240601, capitalize=True)


@dataclass
class _Edge:
    word: int
    prob: float
    target: int


class StoryGrammar(ExactSource):
    """The story source: a PDFA over tokens with exact probabilities (states: the PDFA's).

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
        self.edge_word = np.array([e.word for es in edges for e in es], dtype=np.int64)
        self.edge_target = np.array([e.target for es in edges for e in es], dtype=np.int64)
        live = np.flatnonzero(self.edge_target >= 0)
        self.edges = EdgeTable(ptr=ptr, prob=np.array([e.prob for es in edges for e in es], dtype=np.float64),
                               child_edge=live, child_state=self.edge_target[live],
                               emit_edge=np.arange(self.edge_word.size), emit_word=self.edge_word)
        self._transition = {(int(s), int(w)): i for i, (s, w) in enumerate(zip(self.edges.state, self.edge_word))}
        self._index = {w: i for i, w in enumerate(self.words)}

    # -- sampling -------------------------------------------------------------------------
    def sample_ids(self, num_documents: int, seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(grammar word ids without </s>, offsets, exact natural-log probability per story)."""
        rng = seeded_generator(seed)
        n = int(num_documents)
        state = np.full(n, self.start_state, dtype=np.int64)
        active = np.arange(n, dtype=np.int64)
        logp = np.zeros(n, dtype=np.float64)
        story_parts, word_parts = [], []
        while active.size:
            e = self.edges.draw(state, rng.random(active.size))
            np.add.at(logp, active, self.edges.logp[e])
            w = self.edge_word[e]
            keep = w != 0  # 0 = </s>: the story ends
            story_parts.append(active[keep])
            word_parts.append(w[keep])
            state = self.edge_target[e][keep]
            active = active[keep]
        ids, offsets = gather_documents(n, story_parts, word_parts)
        return ids, offsets, logp

    # -- exact probabilities ----------------------------------------------------------------
    def log_prob(self, tokens: Sequence[str]) -> float:
        """Exact natural-log probability of one story (tokens without </s>); -inf if impossible."""
        s, total = self.start_state, 0.0
        for tok in list(tokens) + [EOS]:
            w = self._index.get(tok)
            e = self._transition.get((s, w)) if w is not None else None
            if e is None:
                return -math.inf
            total += self.edges.logp[e]
            s = int(self.edge_target[e])
        return total

    def describe(self) -> Dict[str, object]:
        ex = self.exact()
        return {"num_names": self.num_names, "zipf": self.zipf, "continue_prob": self.continue_prob,
                "num_states": self.num_states, "vocabulary": len(self.words) - 1,
                "expected_length": ex.expected_length, "entropy_nats_per_token": ex.entropy_per_token}


_CACHE: Dict[tuple, ExactSource] = {}


def get_grammar(num_names: int = 1000, zipf: float = 1.1, continue_prob: float = 0.8) -> StoryGrammar:
    """A cached grammar (building one takes a fraction of a second)."""
    g = cached(_CACHE, (int(num_names), float(zipf), float(continue_prob)), StoryGrammar)
    assert isinstance(g, StoryGrammar)
    return g


def sample_stories(num_documents: int, seed: int, num_names: int = 1000, zipf: float = 1.1,
                   continue_prob: float = 0.8) -> Corpus:
    """num_documents stories from the default grammar (deterministic per seed)."""
    return get_grammar(num_names, zipf, continue_prob).sample(num_documents, seed)[0]
