"""python/collapse/_core.pyi says what the built extension has: mypy's stubtest finds names
missing on either side, classes and properties that differ; since stubtest cannot read a
pybind11 function's signature, every stubbed function's parameters (names, order, which
have defaults) are compared here with the signature pybind11 writes in its docstring."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

stubdoc = pytest.importorskip("mypy.stubdoc", reason="the stub checks need mypy (test extra)")

import collapse._core as core  # noqa: E402  (after the skip)

STUB = pathlib.Path(core.__file__).resolve().parent / "_core.pyi"
ALLOWLIST = pathlib.Path(__file__).resolve().parent / "stubtest-allowlist.txt"


def test_stubtest_finds_no_difference():
    proc = subprocess.run([sys.executable, "-m", "mypy.stubtest", "collapse._core", "--allowlist", str(ALLOWLIST)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def stub_functions():
    """(qualified name, runtime object, [(parameter, has default)]) for every function and
    method the stub declares (properties excluded)."""
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    out = []

    def params(fn):
        args = fn.args.posonlyargs + fn.args.args
        with_default = len(fn.args.defaults)
        return [(a.arg, i >= len(args) - with_default) for i, a in enumerate(args) if a.arg != "self"]

    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.append((node.name, getattr(core, node.name), params(node)))
        elif isinstance(node, ast.ClassDef):
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and not any(
                        isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list):
                    out.append((f"{node.name}.{fn.name}", getattr(getattr(core, node.name), fn.name), params(fn)))
    return [pytest.param(*entry, id=entry[0]) for entry in out]


def runtime_params(name, obj):
    sigs = stubdoc.infer_sig_from_docstring(obj.__doc__ or "", name.split(".")[-1])
    assert len(sigs) == 1, f"{name}: expected one pybind11 signature in its docstring, got {sigs}"
    return [(a.name, a.default) for a in sigs[0].args if a.name != "self"]


@pytest.mark.parametrize("name,obj,params", stub_functions())
def test_stub_signature_is_the_bindings(name, obj, params):
    assert params == runtime_params(name, obj), name
