"""The package's shape (issue 9): every module imports on its own, the import graph has no
cycle, every module starts with a one-line docstring, the top level stays small."""

import ast
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

import collapse

# the package under test: the checkout (PYTHONPATH=python) or the installed copy (CI), the
# one that holds the built extension
PACKAGE = pathlib.Path(collapse.__file__).resolve().parent
TORCH = importlib.util.find_spec("torch") is not None


def module_names():
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def imported_modules(name, path, known):
    """collapse modules that ``name`` imports anywhere in its file (module level or inside
    functions: an import hidden in a function still closes a cycle when it runs)."""
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub (and pkg itself only for the
            # names that are not submodules)
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known]
            targets = subs + ([mod] if len(subs) < len(node.names) else [])
        else:
            continue
        for t in targets:
            if t == "collapse" or t.startswith("collapse."):
                out.add(t)
    return out


def import_graph():
    """Edges module -> module it imports, plus the implicit edges to the packages above an
    imported module that the importer is not already inside (importing collapse.a.b from
    collapse.c.d runs collapse/a/__init__.py first). The root package is the facade that
    re-exports the public names; no module may import it."""
    mods = dict(module_names())
    known = set(mods) | {"collapse._core"}

    def ancestors(name):
        parts = name.split(".")
        return {".".join(parts[:i]) for i in range(2, len(parts))}

    graph = {}
    for name, path in mods.items():
        deps = {d for d in imported_modules(name, path, known) if d in known}
        mine = ancestors(name) | ({name} if path.name == "__init__.py" else set())
        for d in list(deps):
            deps |= ancestors(d) - mine
        graph[name] = deps - {name}
    return graph


def find_cycle(graph):
    """A list of modules forming a cycle, or None (iterative DFS, three colours)."""
    state, stack_path = {}, []
    for start in graph:
        if state.get(start):
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        state[start] = 1
        stack_path.append(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                stack_path.pop()
                state[node] = 2
                continue
            if state.get(nxt) == 1:
                return stack_path[stack_path.index(nxt):] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                stack_path.append(nxt)
                work.append((nxt, iter(sorted(graph.get(nxt, ())))))
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 30
    assert "collapse.experiment.paradigms" in graph["collapse.theory.ngram"]  # the parser sees real edges
    offenders = sorted(m for m, deps in graph.items() if "collapse" in deps and m != "collapse")
    assert not offenders, f"modules importing the root package: {offenders}"
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_every_module_imports_alone():
    """Each module imported first, in one interpreter whose collapse modules are dropped
    from sys.modules before each import (fast: numpy and pandas stay loaded)."""
    names = [n for n, p in module_names() if TORCH or not n.startswith(("collapse.transformer", "collapse.hf"))]
    names = [n for n in names if not n.endswith("__main__")]
    script = (
        "import importlib, json, sys\n"
        "failed = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    for m in [m for m in sys.modules if m == 'collapse' or m.startswith('collapse.')]:\n"
        "        if m != 'collapse._core':\n"
        "            del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        failed[name] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps(failed))\n")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(names)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {}


def test_main_modules_run():
    env = dict(os.environ, PYTHONPATH=str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "collapse", "--help"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "simulate" in proc.stdout


@pytest.mark.parametrize("name,path", module_names(), ids=[n for n, _ in module_names()])
def test_module_starts_with_a_one_line_docstring(name, path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    assert doc, f"{name} has no docstring"
    first = doc.split("\n", 1)[0].strip()
    assert first and len(first) <= 120, f"{name}: first line {first!r}"
    assert first.endswith((".", ")", ":")) or "\n" not in doc.strip() or doc.split("\n")[1].strip() == "", name


def test_top_level_is_small():
    top = [p.name for p in PACKAGE.iterdir() if p.is_file() and (p.suffix == ".py" or p.suffix == ".so")]
    assert len(top) <= 6, top
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert subpackages == ["cli", "data", "experiment", "hf", "ngram", "theory", "transformer"]


def test_public_names_from_the_root():
    for name in ("load_corpus", "Corpus", "Vocab", "concatenate", "NGramModel", "simulate", "run_experiment",
                 "CollapseError", "resample", "__version__"):
        assert hasattr(collapse, name), name
    assert collapse.simulate is collapse.theory.simulate
