"""Benchmarks import collapse from the in-place build (tools/dev-build.sh) when there is
one, and from the installed package otherwise."""

import glob
import os
import sys

_PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
if glob.glob(os.path.join(_PYTHON_DIR, "collapse", "_core*.so")):
    sys.path.insert(0, _PYTHON_DIR)
