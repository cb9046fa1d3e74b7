#!/usr/bin/env bash
# Build the extension in place for development (no pip install): the module lands in
# python/collapse/, so `PYTHONPATH=python python -m pytest` uses this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/dev
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j 2
# Copy then rename: overwriting a loaded .so in place crashes processes using it (SIGBUS).
for so in "$build"/_core*.so; do
  cp "$so" "python/collapse/.$(basename "$so").tmp"
  mv -f "python/collapse/.$(basename "$so").tmp" "python/collapse/$(basename "$so")"
done
