#!/usr/bin/env bash
# Build KenLM's lmplz (and query, build_binary) from the PyPI `kenlm` source
# distribution, with Debian's Boost. Used by the parity tests and benchmarks as the
# independent reference; nothing of KenLM is committed to this project.
#
#   tools/build_lmplz.sh [PREFIX]      -> PREFIX/bin/lmplz
#
# PREFIX defaults to $COLLAPSE_LMPLZ_PREFIX, else build/lmplz. Needs the Debian packages
# below. On Debian/Ubuntu (dpkg-query and apt-get present) the missing ones are installed
# with apt-get when this runs as root or passwordless sudo works; otherwise it stops with
# one line naming the command to run. Elsewhere it tries the build as is (Boost from
# another source). $PYTHON (default python) downloads the sdist. Stdout: the path of
# lmplz, only on success.
set -euo pipefail
prefix="$(realpath -m "${1:-${COLLAPSE_LMPLZ_PREFIX:-$(dirname "$0")/../build/lmplz}}")"
if [ -x "$prefix/bin/lmplz" ]; then echo "$prefix/bin/lmplz"; exit 0; fi

PACKAGES=(libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev
          zlib1g-dev libbz2-dev liblzma-dev)

missing_packages() {  # the Debian packages not installed, plus cmake and g++ when not on PATH
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
  command -v cmake >/dev/null || echo cmake
  command -v g++ >/dev/null || echo g++
}

install_prerequisites() {  # Debian/Ubuntu only; elsewhere the build says what is missing
  command -v dpkg-query >/dev/null && command -v apt-get >/dev/null || return 0
  local missing
  missing="$(missing_packages | tr '\n' ' ')"
  missing="${missing% }"
  [ -n "$missing" ] || return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "build_lmplz: missing Debian packages and no root or passwordless sudo: run sudo apt-get install -y $missing" >&2
      exit 1
    fi
  fi
  echo "build_lmplz: installing $missing (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2 || true
  # shellcheck disable=SC2086  # one word per package
  if ! $sudo apt-get install -y -qq $missing >&2; then
    echo "build_lmplz: apt-get install -y $missing failed" >&2
    exit 1
  fi
}

work="$prefix/src"
mkdir -p "$work"
install_prerequisites
if [ ! -f "$work/CMakeLists.txt" ]; then
  "${PYTHON:-python}" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation "kenlm==0.3.0" -d "$prefix/sdist" >&2
  tar xzf "$prefix"/sdist/kenlm-*.tar.gz -C "$work" --strip-components=1
fi
cmake -S "$work" -B "$prefix/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=8 \
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >&2
cmake --build "$prefix/build" --target lmplz query build_binary -j "$(nproc)" >&2
mkdir -p "$prefix/bin"
cp "$prefix/build/bin/lmplz" "$prefix/build/bin/query" "$prefix/build/bin/build_binary" "$prefix/bin/"
echo "$prefix/bin/lmplz"
