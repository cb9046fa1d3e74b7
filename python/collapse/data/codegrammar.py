"""The embedded code source: a small programming language from an LL(1) probabilistic grammar, exact probabilities.

Design (see docs/experiment.md, "The embedded code source"):

* A document is a program: statements (after each, another follows with probability
  ``continue_prob``, at most ``max_statements``), then ``</s>``. A statement is an
  assignment ``x = EXPR ;``, a guarded one ``if COND : x = EXPR ;`` or a call
  ``print ( EXPR ) ;``. An expression is a number, an identifier, ``( EXPR op EXPR )``,
  ``f ( EXPR )`` or ``g ( EXPR , EXPR )``; a condition is ``( EXPR cmp EXPR )``,
  ``not COND``, ``all ( COND , COND )``, ``any ( COND , COND )``, ``true`` or ``false``.
  Nesting stops at ``max_depth`` (beyond it only numbers, identifiers and comparisons of
  them), so the nonterminals are indexed by depth.
* Tokens are words separated by spaces (identifiers, numbers, operators, punctuation), so
  the n-gram and transformer families read programs as they read stories.
* Word classes (identifiers, numbers, operators, comparisons, functions) have Zipf
  weights; identifiers have a long tail of made-up names, so the vocabulary has many rare
  words.
* The grammar is checked to be **LL(1)** when built (every nonterminal's rules are told
  apart by the next token: explicit parentheses, prefix keywords, disjoint word classes).
  An LL(1) grammar is unambiguous, so a program's probability is that of its one
  derivation, which the predictive parser (``derivation``) recovers: **exact**.
* Exact expected counts, length and entropy per document come from the expected
  expansions of every nonterminal (collapse.data.exactsource, shared with the story
  grammar). Sampling expands every document's stack of symbols at once (numpy), with a
  Philox stream keyed by the seed.
* A latent property per program, for classifiers: ``last_value_is_even`` (the program
  run: an unassigned identifier reads 0; the value of the last assignment executed, 0 if
  none, is even).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from ..errors import CollapseError
from .corpus import EOS, Corpus
from .exactsource import EdgeTable, ExactSource, cached, gather_documents, made_up_words, seeded_generator, zipf_weights

_COMMON_IDENTIFIERS = ["x", "y", "i", "n", "total", "count", "z", "j", "k", "result", "value", "sum", "a", "b",
                       "index", "size", "temp", "left", "right", "step"]
OPERATORS = ["+", "-", "*"]
COMPARISONS = ["<", "==", ">", "!=", "<=", ">="]
FUNCTIONS_1 = ["abs", "neg", "sq", "inc", "dec"]
FUNCTIONS_2 = ["max", "min"]

# What each word means when a program runs (last_value_is_even).
_APPLY: Dict[str, Callable[..., int]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "abs": abs, "neg": lambda a: -a, "sq": lambda a: a * a, "inc": lambda a: a + 1, "dec": lambda a: a - 1,
    "max": max, "min": min,
}
_COMPARE: Dict[str, Callable[[int, int], bool]] = {
    "<": lambda a, b: a < b, "==": lambda a, b: a == b, ">": lambda a, b: a > b, "!=": lambda a, b: a != b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}

# Relative weights of the alternatives of each nonterminal (below max_depth).
STATEMENT_WEIGHTS = {"assign": 6.0, "if": 2.0, "print": 1.5}
EXPRESSION_WEIGHTS = {"num": 3.0, "ident": 4.0, "binop": 2.0, "call1": 1.0, "call2": 0.7}
CONDITION_WEIGHTS = {"cmp": 4.0, "not": 0.7, "all": 0.5, "any": 0.5, "true": 0.3, "false": 0.3}
LEAF_EXPRESSIONS = ("num", "ident")
LEAF_CONDITIONS = ("cmp", "true", "false")


@dataclass
class Rule:
    """lhs -> rhs with probability prob; rhs symbols are nonterminal names or words;
    kind says what the rule means when a program runs."""

    lhs: str
    prob: float
    rhs: Tuple[str, ...]
    kind: str


def identifiers(count: int) -> List[str]:
    """``count`` identifiers: the common ones, then made-up lowercase names (fixed order)."""
    return (_COMMON_IDENTIFIERS + made_up_words(max(0, count - len(_COMMON_IDENTIFIERS)), _COMMON_IDENTIFIERS,
                                                key=20261204, capitalize=False))[:count]


class CodeGrammar(ExactSource):
    """The code source: a PCFG over word tokens, LL(1), with exact probabilities (states:
    its nonterminals; edges: its rules).

    num_identifiers: size of the identifier class (the Zipf tail); num_numbers: the number
    literals 0 .. num_numbers - 1; zipf: the Zipf exponent of every class's words;
    continue_prob: probability that another statement follows (at most max_statements);
    max_depth: how deep expressions and conditions nest.
    """

    def __init__(self, num_identifiers: int = 1000, zipf: float = 1.1, continue_prob: float = 0.8,
                 max_depth: int = 4, max_statements: int = 20, num_numbers: int = 32) -> None:
        for name, value, least in (("num_identifiers", num_identifiers, 1), ("num_numbers", num_numbers, 1),
                                   ("max_depth", max_depth, 0), ("max_statements", max_statements, 1)):
            if int(value) != value or value < least:
                raise CollapseError(f"code grammar: {name} must be an integer >= {least}, got {value}")
        if not (zipf > 0):
            raise CollapseError(f"code grammar: zipf must be > 0, got {zipf}")
        if not (0.0 < continue_prob < 1.0):
            raise CollapseError(f"code grammar: continue_prob must be in (0, 1), got {continue_prob}")
        self.num_identifiers, self.num_numbers = int(num_identifiers), int(num_numbers)
        self.zipf, self.continue_prob = float(zipf), float(continue_prob)
        self.max_depth, self.max_statements = int(max_depth), int(max_statements)
        self.classes: Dict[str, List[str]] = {
            "IDENT": identifiers(self.num_identifiers), "NUM": [str(i) for i in range(self.num_numbers)],
            "OP": OPERATORS, "CMP": COMPARISONS, "FUNC1": FUNCTIONS_1, "FUNC2": FUNCTIONS_2,
        }
        self.rules = self._rules()
        self._compile()

    # -- the grammar --------------------------------------------------------------------------
    def _rules(self) -> List[Rule]:
        """Every rule, grouped by left-hand side; DOC is the start symbol."""
        c, D, last = self.continue_prob, self.max_depth, self.max_statements - 1
        rules = [Rule("DOC", 1.0, ("STMT", "MORE1", EOS), "program")]
        for k in range(1, self.max_statements):  # MOREk: after k statements
            more = ("STMT", f"MORE{k + 1}") if k < last else ("STMT",)
            rules += [Rule(f"MORE{k}", c, more, "more"), Rule(f"MORE{k}", 1.0 - c, (), "end")]
        if self.max_statements == 1:
            rules[0] = Rule("DOC", 1.0, ("STMT", EOS), "program")
        rhs = {"assign": ("IDENT", "=", "EXPR0", ";"), "if": ("if", "COND0", ":", "IDENT", "=", "EXPR0", ";"),
               "print": ("print", "(", "EXPR0", ")", ";")}
        rules += _alternatives("STMT", STATEMENT_WEIGHTS, rhs)
        for d in range(D + 1):
            e, b = f"EXPR{min(d + 1, D)}", f"COND{min(d + 1, D)}"
            rhs = {"num": ("NUM",), "ident": ("IDENT",), "binop": ("(", e, "OP", e, ")"),
                   "call1": ("FUNC1", "(", e, ")"), "call2": ("FUNC2", "(", e, ",", e, ")")}
            keep = EXPRESSION_WEIGHTS if d < D else {k: EXPRESSION_WEIGHTS[k] for k in LEAF_EXPRESSIONS}
            rules += _alternatives(f"EXPR{d}", keep, rhs)
            rhs = {"cmp": ("(", e, "CMP", e, ")"), "not": ("not", b), "all": ("all", "(", b, ",", b, ")"),
                   "any": ("any", "(", b, ",", b, ")"), "true": ("true",), "false": ("false",)}
            keep = CONDITION_WEIGHTS if d < D else {k: CONDITION_WEIGHTS[k] for k in LEAF_CONDITIONS}
            rules += _alternatives(f"COND{d}", keep, rhs)
        for name, ws in self.classes.items():
            rules += [Rule(name, float(p), (w,), "word") for w, p in zip(ws, zipf_weights(len(ws), self.zipf))]
        return rules

    def _compile(self) -> None:
        """Number the symbols, build the edge table, and check LL(1) (the parse table)."""
        names = list(dict.fromkeys(r.lhs for r in self.rules))
        self.nonterminals = {name: i for i, name in enumerate(names)}
        words = [EOS]
        for r in self.rules:
            words += [s for s in r.rhs if s not in self.nonterminals and s != EOS]
        self.words = list(dict.fromkeys(words))
        self._index = {w: i for i, w in enumerate(self.words)}
        order = sorted(range(len(self.rules)), key=lambda i: self.nonterminals[self.rules[i].lhs])
        if order != list(range(len(self.rules))):
            raise CollapseError("code grammar: rules must be grouped by left-hand side")
        N = len(names)
        ptr = np.zeros(N + 1, dtype=np.int64)
        np.cumsum(np.bincount([self.nonterminals[r.lhs] for r in self.rules], minlength=N), out=ptr[1:])
        # a symbol's code: a nonterminal's index, or N + a word's index
        self.rhs_codes = [[self.nonterminals[s] if s in self.nonterminals else N + self._index[s] for s in r.rhs]
                          for r in self.rules]
        pairs = [(e, code) for e, codes in enumerate(self.rhs_codes) for code in codes]
        child = np.array([(e, c) for e, c in pairs if c < N], dtype=np.int64).reshape(-1, 2)
        emit = np.array([(e, c - N) for e, c in pairs if c >= N], dtype=np.int64).reshape(-1, 2)
        self.edges = EdgeTable(ptr=ptr, prob=np.array([r.prob for r in self.rules]), child_edge=child[:, 0],
                               child_state=child[:, 1], emit_edge=emit[:, 0], emit_word=emit[:, 1])
        self.start_state = self.nonterminals["DOC"]
        self.num_states = N
        width = max(len(codes) for codes in self.rhs_codes)
        self._rhs_len = np.array([len(codes) for codes in self.rhs_codes], dtype=np.int64)
        self._rhs_reversed = np.zeros((len(self.rules), max(width, 1)), dtype=np.int64)
        for e, codes in enumerate(self.rhs_codes):
            self._rhs_reversed[e, :len(codes)] = codes[::-1]
        self._table = self._parse_table()

    def _parse_table(self) -> Dict[Tuple[int, int], int]:
        """(nonterminal, next word) -> the one rule that can apply; raises if two can (not LL(1))."""
        nts = self.nonterminals
        first: Dict[str, Set[str]] = {a: set() for a in nts}
        nullable: Set[str] = set()
        follow: Dict[str, Set[str]] = {a: set() for a in nts}

        def first_of(seq: Sequence[str]) -> Tuple[Set[str], bool]:
            out: Set[str] = set()
            for s in seq:
                if s not in nts:
                    return out | {s}, False
                out |= first[s]
                if s not in nullable:
                    return out, False
            return out, True

        changed = True
        while changed:  # the textbook fixed point: FIRST, nullable, then FOLLOW
            changed = False
            for r in self.rules:
                f, empty = first_of(r.rhs)
                if not f <= first[r.lhs] or (empty and r.lhs not in nullable):
                    first[r.lhs] |= f
                    nullable |= {r.lhs} if empty else set()
                    changed = True
                for i, s in enumerate(r.rhs):
                    if s in nts:
                        f, empty = first_of(r.rhs[i + 1:])
                        add = f | (follow[r.lhs] if empty else set())
                        if not add <= follow[s]:
                            follow[s] |= add
                            changed = True
        table: Dict[Tuple[int, int], int] = {}
        for e, r in enumerate(self.rules):
            f, empty = first_of(r.rhs)
            for w in f | (follow[r.lhs] if empty else set()):
                key = (nts[r.lhs], self._index[w])
                if key in table:
                    raise CollapseError(f"code grammar: not LL(1): {r.lhs} has two rules for the token {w!r}")
                table[key] = e
        return table

    # -- sampling ---------------------------------------------------------------------------
    def sample_ids(self, num_documents: int, seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(word ids without </s>, offsets, exact natural-log probability per program).

        Every program keeps a stack of symbols; each round pops one symbol per unfinished
        program and either emits it (a word) or pushes the right-hand side of a rule drawn
        for it (a nonterminal), so each program's words come out in order."""
        rng = seeded_generator(seed)
        n, N = int(num_documents), self.num_states
        stack = np.zeros((n, 64), dtype=np.int64)
        stack[:, 0] = self.start_state
        top = np.ones(n, dtype=np.int64)
        logp = np.zeros(n, dtype=np.float64)
        active = np.arange(n, dtype=np.int64)
        doc_parts: List[np.ndarray] = []
        word_parts: List[np.ndarray] = []
        while active.size:
            top[active] -= 1
            symbol = stack[active, top[active]]
            word = symbol >= N
            emitted = symbol[word] - N
            keep = emitted != 0  # </s> is not a token of the Corpus
            doc_parts.append(active[word][keep])
            word_parts.append(emitted[keep])
            docs = active[~word]
            e = self.edges.draw(symbol[~word], rng.random(docs.size))
            logp[docs] += self.edges.logp[e]
            stack = self._push(stack, top, docs, e)
            active = active[top[active] > 0]
        ids, offsets = gather_documents(n, doc_parts, word_parts)
        return ids, offsets, logp

    def _push(self, stack: np.ndarray, top: np.ndarray, docs: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Push rule e's right-hand side (reversed: its first symbol on top) onto each doc's stack."""
        length = self._rhs_len[e]
        total = int(length.sum())
        if total == 0:
            return stack
        within = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
        rows = np.repeat(docs, length)
        cols = np.repeat(top[docs], length) + within
        if cols.max() >= stack.shape[1]:
            stack = np.concatenate([stack, np.zeros_like(stack)], axis=1)
        stack[rows, cols] = self._rhs_reversed[np.repeat(e, length), within]
        top[docs] += length
        return stack

    # -- exact probabilities -------------------------------------------------------------------
    def derivation(self, tokens: Sequence[str]) -> Optional[List[int]]:
        """The rules of the program's one leftmost derivation (predictive LL(1) parse), or
        None when the grammar cannot produce it."""
        N = self.num_states
        ids = [self._index.get(t, -1) for t in tokens] + [0]
        if -1 in ids[:-1] or 0 in ids[:-1]:
            return None
        stack, pos, rules = [self.start_state], 0, []
        while stack:
            symbol = stack.pop()
            if pos >= len(ids):
                return None
            if symbol >= N:
                if symbol - N != ids[pos]:
                    return None
                pos += 1
                continue
            e = self._table.get((symbol, ids[pos]))
            if e is None:
                return None
            rules.append(e)
            stack.extend(reversed(self.rhs_codes[e]))
        return rules if pos == len(ids) else None

    def log_prob(self, tokens: Sequence[str]) -> float:
        """Exact natural-log probability of one program (tokens without </s>); -inf if impossible."""
        rules = self.derivation(tokens)
        return -math.inf if rules is None else float(sum(self.edges.logp[e] for e in rules))

    def describe(self) -> Dict[str, object]:
        ex = self.exact()
        return {"num_identifiers": self.num_identifiers, "num_numbers": self.num_numbers, "zipf": self.zipf,
                "continue_prob": self.continue_prob, "max_depth": self.max_depth,
                "max_statements": self.max_statements, "num_nonterminals": self.num_states,
                "num_rules": len(self.rules), "vocabulary": len(self.words) - 1,
                "expected_length": ex.expected_length, "entropy_nats_per_document": ex.document_entropy,
                "entropy_nats_per_token": ex.entropy_per_token}

    # -- the latent property ----------------------------------------------------------------------
    def run(self, tokens: Sequence[str]) -> int:
        """Run the program: the value of the last assignment executed (0 if none; an
        identifier never assigned reads 0)."""
        rules = self.derivation(tokens)
        if rules is None:
            raise CollapseError(f"code grammar: not a program: {' '.join(tokens)[:80]!r}")
        env: Dict[str, int] = {}
        last = [0]
        self._value(iter(rules), env, last)
        return last[0]

    def last_value_is_even(self, tokens: Sequence[str]) -> bool:
        """The latent label: is the value of the last assignment executed even?"""
        return self.run(tokens) % 2 == 0

    def corpus_labels(self, corpus: Corpus) -> np.ndarray:
        """last_value_is_even of every program of a Corpus (bool array)."""
        words = corpus.vocab.words
        return np.array([self.last_value_is_even([words[i] for i in doc]) for doc in corpus.documents()], dtype=bool)

    def _value(self, rules: Iterator[int], env: Dict[str, int], last: List[int]):  # noqa: ANN202
        """Evaluate the subtree whose rules (in derivation order) come next."""
        rule = self.rules[next(rules)]
        if rule.kind == "word":
            return rule.rhs[0]
        parts = [self._value(rules, env, last) for s in rule.rhs if s in self.nonterminals]
        kind = rule.kind
        if kind in ("assign", "if"):
            *cond, name, value = parts
            if kind == "assign" or cond[0]:
                env[name] = last[0] = value
        elif kind == "num":
            return int(parts[0])
        elif kind == "ident":
            return env.get(parts[0], 0)
        elif kind in ("binop", "call1", "call2"):
            f, args = (parts[1], parts[::2]) if kind == "binop" else (parts[0], parts[1:])
            return _APPLY[f](*args)
        elif kind == "cmp":
            return _COMPARE[parts[1]](parts[0], parts[2])
        elif kind in ("not", "all", "any", "true", "false"):
            return {"not": lambda: not parts[0], "all": lambda: parts[0] and parts[1],
                    "any": lambda: parts[0] or parts[1], "true": lambda: True, "false": lambda: False}[kind]()
        return None  # program, more, end, print: statements, run for their assignments


def _alternatives(lhs: str, weights: Dict[str, float], rhs: Dict[str, Tuple[str, ...]]) -> List[Rule]:
    total = sum(weights.values())
    return [Rule(lhs, w / total, rhs[kind], kind) for kind, w in weights.items()]


_CACHE: Dict[tuple, ExactSource] = {}


def get_code_grammar(num_identifiers: int = 1000, zipf: float = 1.1, continue_prob: float = 0.8,
                     max_depth: int = 4, max_statements: int = 20, num_numbers: int = 32) -> CodeGrammar:
    """A cached code grammar."""
    key = (int(num_identifiers), float(zipf), float(continue_prob), int(max_depth), int(max_statements),
           int(num_numbers))
    g = cached(_CACHE, key, CodeGrammar)
    assert isinstance(g, CodeGrammar)
    return g
