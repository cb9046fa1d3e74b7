"""The model families a config may name: name -> FamilyRegistration (collapse.register_family, entry points).

A family joins by ``register_family(name, registration)``: a FamilyRegistration
(collapse.experiment.family), or a function of no arguments returning one, called the
first time the name is looked up (so the transformer family imports torch only when a
config names it). Installed packages may also declare families in the entry-point group
``collapse.families`` (name = "package.module:attribute", the attribute being either
form); they are read the first time a name is not found among the registered ones. The
built-in families register here through the same function (collapse.experiment.families).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Dict, List

from ..errors import CollapseError
from ..validate import did_you_mean
from .family import FamilyRegistration, RegistrationSource
from . import families as builtin

ENTRY_POINT_GROUP = "collapse.families"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-.")

_SOURCES: Dict[str, RegistrationSource] = {}   # name -> a registration or a function giving one
_LOADED: Dict[str, FamilyRegistration] = {}
_ENTRY_POINTS: Dict[str, Any] = {}              # name -> importlib.metadata.EntryPoint, once read
_entry_points_read = False


def register_family(name: str, registration: RegistrationSource) -> None:
    """Make ``family = "<name>"`` usable in a config's [model] / [[model]] tables.
    registration: a FamilyRegistration, or a function of no arguments returning one
    (called on the name's first lookup). Registering a name again replaces it."""
    if not isinstance(name, str) or not name or set(name) - NAME_CHARS:
        raise CollapseError(f"register_family: the name must be lower-case letters, digits, '_', '-' or '.', "
                            f"got {name!r}")
    if not (isinstance(registration, FamilyRegistration) or callable(registration)):
        raise CollapseError(f"register_family({name!r}): give a FamilyRegistration or a function returning one, "
                            f"not {type(registration).__name__}")
    _SOURCES[name] = registration
    _LOADED.pop(name, None)


def _read_entry_points() -> None:
    """The ``collapse.families`` entry points of the installed distributions (read once)."""
    global _entry_points_read
    if _entry_points_read:
        return
    try:
        found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python 3.9: a dict of groups
        found = metadata.entry_points().get(ENTRY_POINT_GROUP, ())  # type: ignore[attr-defined]
    for ep in found:
        _ENTRY_POINTS.setdefault(ep.name, ep)
    _entry_points_read = True


def known_families() -> List[str]:
    """Every name a config may use: the registered ones and the entry points' (not loaded)."""
    _read_entry_points()
    return sorted(set(_SOURCES) | set(_ENTRY_POINTS))


def is_known(name: str) -> bool:
    return name in _SOURCES or name in known_families()


def unknown_family(name: Any, what: str = "model family") -> str:
    """The one-line message for a family nobody registered, naming the known ones."""
    known = known_families()
    return f"unknown {what} {name!r}{did_you_mean(str(name), known)} (choose from {', '.join(known)})"


def registration(name: str) -> FamilyRegistration:
    """The registration of family ``name`` (loaded on first use); a CollapseError naming
    the known families when there is none."""
    if name in _LOADED:
        return _LOADED[name]
    source = _SOURCES.get(name)
    where = f"family {name!r}"
    if source is None:
        _read_entry_points()
        ep = _ENTRY_POINTS.get(name)
        if ep is None:
            raise CollapseError(unknown_family(name))
        where = f"family {name!r} (entry point {ep.value!r} of group {ENTRY_POINT_GROUP})"
        try:
            source = ep.load()
        except ImportError as e:
            raise CollapseError(f"{where} cannot be imported: {e}") from None
    reg = source if isinstance(source, FamilyRegistration) else source()
    if not isinstance(reg, FamilyRegistration):
        raise CollapseError(f"{where} gave {type(reg).__name__}, not a FamilyRegistration")
    _LOADED[name] = reg
    return reg


register_family("ngram", builtin.ngram_registration)
register_family("transformer", builtin.transformer_registration)
register_family("hf", builtin.hf_registration)
