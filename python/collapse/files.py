"""Durable file writes: the one atomic-write helper (temp, fsync, rename, fsync dir), JSON and TOML."""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Mapping

import tomli_w

TEMP_MARK = ".tmp."  # every temporary name holds it, so a resumed run can sweep what a killed one left


def temporary_name(path: str, suffix: str = "") -> str:
    """A temporary name next to ``path``, unique per process and thread (suffix: keep an extension
    that a writer needs, e.g. ".png" for matplotlib)."""
    return f"{path}{TEMP_MARK}{os.getpid()}.{threading.get_ident()}{suffix}"


def fsync_directory(directory: str) -> None:
    """Make a rename (or a new entry) in ``directory`` durable."""
    fd = os.open(directory or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """The one atomic write: yields a temporary path for the caller (or a library: pyarrow,
    safetensors, matplotlib, the C++ ARPA writer) to write; on success the file is fsynced,
    renamed over ``path`` and the directory fsynced, so after a crash or power loss ``path``
    holds the old content or the new one, never a part, and a rename that a commit point
    relies on has reached the disk. On an exception the temporary file is removed."""
    path = os.fspath(path)
    tmp = temporary_name(path, suffix)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def move_files_into(source: str, directory: str) -> None:
    """Each file of the folder ``source`` (a library wrote them there: save_pretrained)
    fsynced and renamed into ``directory``, then the directory fsynced: every file arrives
    whole (the atomic unit is the file, as with atomic_path)."""
    for name in sorted(os.listdir(source)):
        _fsync_path(os.path.join(source, name))
        os.replace(os.path.join(source, name), os.path.join(directory, name))
    fsync_directory(directory)


def move_directory(source: str, path: str) -> None:
    """The finished folder ``source`` renamed to ``path`` (absent or an empty folder), its
    files and the parent fsynced: the folder appears whole or not at all."""
    for name in os.listdir(source):
        _fsync_path(os.path.join(source, name))
    fsync_directory(source)
    if os.path.isdir(path):
        os.rmdir(path)  # empty: anything else is refused by rmdir
    os.replace(source, path)
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def toml_text(tables: Mapping[str, Any], header: str = "") -> str:
    """A mapping as TOML (tomli-w; None values dropped, since TOML has no null)."""
    def drop_none(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: drop_none(x) for k, x in v.items() if x is not None}
        if isinstance(v, (list, tuple)):
            return [drop_none(x) for x in v]
        return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v  # numpy scalars

    return header + tomli_w.dumps(drop_none(tables))


def write_toml(path: str, tables: Mapping[str, Any], header: str = "") -> None:
    write_text(path, toml_text(tables, header))
