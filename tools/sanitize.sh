#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the C++ core.
#
#   tools/sanitize.sh [PYTEST ARGS...]     (default: the core's tests, see TESTS below)
#   tools/sanitize.sh --ci [PYTEST ARGS...]  (CI: the core's tests, stopping at the first
#                                          failure, slowest listed; extra args are added)
#   tools/sanitize.sh --build-only         (just the build, e.g. for tools/fuzz.sh --sanitized)
#
# Needs cmake, a C++ compiler with libasan/libubsan, and pybind11 importable by `python`
# (pip install pybind11: pip's isolated build of the package does not leave it behind).
# Cost, measured on a 2-core machine shared with other jobs (load 2-6): the build 287-519 s
# wall (380 CPU-s: ~3.5 min on 2 idle cores), the core's tests 129 s (421 tests; lmplz
# already built, as CI's test run leaves it in build/lmplz). CI (.ci/run) runs --ci.
#
# Builds the extension with -fsanitize=address,undefined into build/sanitize (never into
# python/collapse), assembles a copy of the package around it in build/sanitize/pkg, and
# runs the core's tests against that copy with libasan preloaded (the Python interpreter
# itself is not instrumented, so the runtime must come first). Any memory error or
# undefined behaviour aborts the test process, so "passed" means clean.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
ci=0
if [ "${1:-}" = "--ci" ]; then ci=1; shift; fi
python -m pybind11 --cmakedir >/dev/null 2>&1 ||
  { echo "sanitize.sh: pybind11 is missing for $(command -v python): pip install pybind11" >&2; exit 2; }
build="$root/build/sanitize"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j "${JOBS:-2}"

# The package, Python files from this checkout, the sanitized module instead of any
# in-place build.
pkg="$build/pkg"
rm -rf "$pkg"
mkdir -p "$pkg"
(cd python && find collapse -name '*.so' -prune -o -name '__pycache__' -prune -o -type f -print |
  while read -r f; do mkdir -p "$pkg/$(dirname "$f")"; cp "$f" "$pkg/$f"; done)
cp "$build"/_core*.so "$pkg/collapse/"
[ "${1:-}" = "--build-only" ] && exit 0

# The core's tests: n-gram counting, estimation, ARPA, scoring; sampling; resampling;
# simulation; tokenizer and corpora; bad input.
TESTS=(tests/test_ngram_fit.py tests/test_ngram_properties.py tests/test_ngram_cli.py tests/test_kenlm_parity.py
       tests/test_sampling.py tests/test_sampling_exact.py tests/test_resample.py tests/test_random.py
       tests/test_simulate.py tests/test_simulate_closed_forms.py tests/test_simulate_variates.py
       tests/test_simulate_ngram.py tests/test_tokenize_fast.py tests/test_corpus.py tests/test_metrics.py
       tests/test_arpa_input.py tests/test_pruned_models.py tests/test_threads_and_ids.py
       tests/test_simulate_gaussian.py)
if [ "$ci" = 1 ]; then TESTS+=(-x --durations=10 "$@"); elif [ $# -gt 0 ]; then TESTS=("$@"); fi
existing=(); for t in "${TESTS[@]}"; do if [ -e "${t%%::*}" ] || [[ "$t" == -* ]]; then existing+=("$t"); fi; done

# libstdc++ too: Python does not link it, and ASan's __cxa_throw interceptor must find the
# real one when the extension throws (else every C++ exception aborts).
preload="$(${CXX:-g++} -print-file-name=libasan.so) $(${CXX:-g++} -print-file-name=libstdc++.so)"
# detect_leaks=0: CPython's own allocations would all be reported as leaks.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export COLLAPSE_SANITIZED=1
LD_PRELOAD="$preload" PYTHONPATH="$pkg" python -m pytest -q -p no:cacheprovider "${existing[@]}"
