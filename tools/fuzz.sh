#!/usr/bin/env bash
# Fuzz whole paths of the package with atheris (libFuzzer for Python; in the `test`
# extra): each target turns one mutated input into a number and back.
#
#   tools/fuzz.sh [--sanitized] [SECONDS] [TARGET...]
#   tools/fuzz.sh --ci                 (CI: every target for 45 s, fixed seed)
#
# TARGET: arpa    ARPA file -> load -> score -> perplexity -> sample -> write -> read back
#         corpus  corpus file (lines, tinystories, jsonl, parquet; both tokenizers)
#                 -> load -> fit -> score -> sample -> write -> read back
#         config  run config TOML -> load -> cells -> TOML -> load: the same cells
# (default: all three), each for SECONDS (default 600). Seeds: tools/fuzz/seeds/TARGET
# (with the inputs that once ended in a traceback) and, for config, configs/. New inputs
# collect in build/fuzz/TARGET/corpus; a crash, a hang (-timeout), a memory blow-up
# (-rss_limit_mb) or an exception outside the ValueError family is saved in
# build/fuzz/TARGET/ and fails the run. --sanitized runs against the AddressSanitizer +
# UBSan build of tools/sanitize.sh (build it first: tools/sanitize.sh --build-only).
# Without it: the in-place build (tools/dev-build.sh) if there is one, else the installed
# package (as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
sanitized=0
extra=()
if [ "${1:-}" = "--ci" ]; then shift; set -- 45 "$@"; extra=(-seed=1); fi
if [ "${1:-}" = "--sanitized" ]; then sanitized=1; shift; fi
seconds="${1:-600}"; [ $# -gt 0 ] && shift
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(arpa corpus config)

python -c "import atheris" 2>/dev/null || { echo "fuzz.sh: atheris is missing: pip install atheris (it is in the test extra)" >&2; exit 2; }
env_prefix=()
if [ "$sanitized" = 1 ]; then
  pkg="$root/build/sanitize/pkg"
  [ -d "$pkg/collapse" ] || { echo "fuzz.sh: no sanitized build; run tools/sanitize.sh --build-only" >&2; exit 2; }
  preload="$(${CXX:-g++} -print-file-name=libasan.so) $(${CXX:-g++} -print-file-name=libstdc++.so)"
  env_prefix=(env "LD_PRELOAD=$preload" "PYTHONPATH=$pkg:$root/tools/fuzz"
              "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1" "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
elif ls python/collapse/_core*.so >/dev/null 2>&1; then
  env_prefix=(env "PYTHONPATH=$root/python:$root/tools/fuzz")
else
  (cd /tmp && python -c "import collapse._core") 2>/dev/null ||
    { echo "fuzz.sh: no collapse to fuzz: tools/dev-build.sh, or pip install ." >&2; exit 2; }
  env_prefix=(env "PYTHONPATH=$root/tools/fuzz")
fi

status=0
for t in "${targets[@]}"; do
  work="$root/build/fuzz/$t"
  mkdir -p "$work/corpus"
  seeds=("tools/fuzz/seeds/$t"); [ "$t" = config ] && seeds+=(configs)
  echo "== fuzz $t: ${seconds}s ==" >&2
  set +e
  "${env_prefix[@]}" "COLLAPSE_FUZZ_SCRATCH=$work/scratch" python "tools/fuzz/fuzz_$t.py" "$work/corpus" "${seeds[@]}" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=8192 \
    -artifact_prefix="$work/" -print_final_stats=1 "${extra[@]}" 2>"$work/log.txt"
  rc=$?
  set -e
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|Uncaught|==[0-9]+==" "$work/log.txt" >&2 || true
  if [ $rc -ne 0 ]; then echo "fuzz.sh: $t failed (exit $rc); see $work/log.txt" >&2; status=1; fi
done
exit $status
