"""The embedded sources by name: the story grammar and the code grammar, with [data]'s parameters."""

from __future__ import annotations

from typing import Any

from .codegrammar import get_code_grammar
from .exactsource import ExactSource
from .storygrammar import get_grammar


def embedded_source(d: Any) -> ExactSource:
    """The grammar that ``d.source`` names ("grammar" or "code"), with the parameters of
    ``d`` (an experiment's [data] table: num_names, num_identifiers, zipf, ...)."""
    if d.source == "code":
        return get_code_grammar(d.num_identifiers, d.zipf, d.continue_prob, d.max_depth, d.max_statements,
                                d.num_numbers)
    return get_grammar(d.num_names, d.zipf, d.continue_prob)
