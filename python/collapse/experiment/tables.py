"""Reading one TOML table of a config: typed getters whose errors name the field ("model[1].order: ...").

The config (collapse.experiment.config) reads every table with these, and so does a model
family's registration (FamilyRegistration.validate), so a family of a user's own reports a
bad setting exactly as the built-in ones do.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Mapping, Optional, Tuple

from ..errors import CollapseError
from ..validate import boolean, choice, did_you_mean, integer, real


class ConfigError(CollapseError):
    """A config value that cannot be used; the message starts with the field's name."""


def fail(field_name: str, message: str) -> "ConfigError":
    return ConfigError(f"{field_name}: {message}")


_MISSING = object()


class Table:
    """One table (``name``: how errors call it, "model" or "model[1]"); each getter takes the
    key and a default (none: the key is required) and marks the key as read; finish()
    refuses the keys nobody read, with a "did you mean" from those that were looked for."""

    def __init__(self, raw: Mapping[str, Any], name: str) -> None:
        if not isinstance(raw, Mapping):
            raise fail(name, f"must be a table, got {type(raw).__name__}")
        self.raw = dict(raw)
        self.name = name
        self.used: set = set()
        self.asked: set = set()  # every key the parser looked for: what a misspelt key may have meant

    def f(self, key: str) -> str:
        """The field's name in errors: "<table>.<key>"."""
        return f"{self.name}.{key}"

    def fail(self, key: str, message: str) -> "ConfigError":
        """The error for a bad value of ``key``: "<table>.<key>: message"."""
        return fail(self.f(key), message)

    def has(self, key: str) -> bool:
        self.asked.add(key)
        return key in self.raw

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if key in self.raw:
            return self.raw[key]
        if default is _MISSING:
            raise fail(self.f(key), "is required")
        return default

    def rest(self) -> dict:
        """Every key not read yet, now marked as read (a family that checks its own keys)."""
        out = {k: v for k, v in self.raw.items() if k not in self.used}
        self.used |= set(out)
        return out

    def str_(self, key: str, default: Any = _MISSING, choices: Optional[Tuple[str, ...]] = None) -> Any:
        v = self.get(key, default)
        if v is None and default is None:
            return None
        if not isinstance(v, str):
            raise fail(self.f(key), f"must be a string, got {v!r}")
        if choices is not None:
            choice(self.f(key), v, choices, fail=fail)
        return v

    def int_(self, key: str, default: Any = _MISSING, minimum: Optional[int] = None) -> Any:
        v = self.get(key, default)
        if v is None and default is None:
            return None
        return integer(self.f(key), v, minimum, fail=fail)

    def float_(self, key: str, default: Any = _MISSING, lo: Optional[float] = None, hi: Optional[float] = None,
               lo_open: bool = False, hi_open: bool = False) -> Any:
        v = self.get(key, default)
        if v is None and default is None:
            return None
        return real(self.f(key), v, lo, hi, lo_open=lo_open, hi_open=hi_open, fail=fail)

    def bool_(self, key: str, default: Any = _MISSING) -> Any:
        return boolean(self.f(key), self.get(key, default), fail=fail)

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise fail(f"{self.name}.{unknown[0]}",
                       "unknown key" + did_you_mean(unknown[0], sorted(self.used | self.asked)))


def scalar_or_list(t: Table, one: str, many: str, default: List[Any], check: Callable[[str, Any], Any]) -> List[Any]:
    """A key given either as ``one = x`` or ``many = [x, y]`` (not both)."""
    if t.has(one) and t.has(many):
        raise fail(t.f(many), f"give either {one} or {many}, not both")
    if t.has(many):
        values = t.get(many)
        if not isinstance(values, list) or not values:
            raise fail(t.f(many), f"must be a non-empty list, got {values!r}")
        out = [check(f"{t.f(many)}[{i}]", v) for i, v in enumerate(values)]
        if len(set(out)) != len(out):
            raise fail(t.f(many), "has duplicate values")
        return out
    if t.has(one):
        return [check(t.f(one), t.get(one))]
    return list(default)


def resolve_path(base_dir: str, path: Optional[str]) -> Optional[str]:
    """A path of the config, relative to the config file's folder (base_dir)."""
    if path is None:
        return None
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
