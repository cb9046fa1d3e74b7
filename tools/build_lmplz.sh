#!/usr/bin/env bash
# Build KenLM's lmplz (and query, build_binary) from the PyPI `kenlm` source
# distribution, with Debian's Boost. Used by the parity tests and benchmarks as the
# independent reference; nothing of KenLM is committed to this project.
#
#   tools/build_lmplz.sh [PREFIX]      -> PREFIX/bin/lmplz   (default: build/lmplz)
#
# Needs: libboost-program-options-dev libboost-system-dev libboost-thread-dev
#        libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev, cmake, g++ (see .ci/run).
set -euo pipefail
prefix="$(realpath -m "${1:-$(dirname "$0")/../build/lmplz}")"
if [ -x "$prefix/bin/lmplz" ]; then echo "$prefix/bin/lmplz"; exit 0; fi
work="$prefix/src"
mkdir -p "$work"
if [ ! -f "$work/CMakeLists.txt" ]; then
  python -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation "kenlm==0.3.0" -d "$prefix/sdist" >&2
  tar xzf "$prefix"/sdist/kenlm-*.tar.gz -C "$work" --strip-components=1
fi
cmake -S "$work" -B "$prefix/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=8 \
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >&2
cmake --build "$prefix/build" --target lmplz query build_binary -j "$(nproc)" >&2
mkdir -p "$prefix/bin"
cp "$prefix/build/bin/lmplz" "$prefix/build/bin/query" "$prefix/build/bin/build_binary" "$prefix/bin/"
echo "$prefix/bin/lmplz"
