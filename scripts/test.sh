#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (unit + CLI) through ctest.
# Idempotent. --sanitize builds with ASan+UBSan into build-sanitize/ instead (any report fails);
# --tsan with ThreadSanitizer into build-tsan/ (any report fails; not part of CI, for time).
# With CI=true (as CI sets it): the normal build and tests, then the sanitize build and tests,
# then the fuzz targets over their seed corpora (regression mode; skipped, loudly, without clang++).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "$#:${1:-}" in  # before anything is installed or built: a typo must not pass as a run
  0:|1:--sanitize|1:--tsan) ;;
  1:-h|1:--help) usage; exit 0 ;;
  *) echo "test: unknown arguments: $* (use: scripts/test.sh [--sanitize|--tsan])" >&2; exit 2 ;;
esac
"$root/scripts/setup.sh"

run_suite() {  # run_suite BUILD_DIR [cmake args...]
  local build="$1"
  shift
  RVT_BUILD_DIR="$build" "$root/scripts/build.sh" "$@"
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
}

run_sanitize() {
  # Any ASan/UBSan/LSan report aborts the process (also the CLI binary the Python tests
  # run as a subprocess), so it can never pass as a test's expected exit code.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:exitcode=86:strict_string_checks=1"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
  export LSAN_OPTIONS="exitcode=86"
  run_instrumented "$root/build-sanitize" -DRVT_SANITIZE=ON
}

# run_instrumented BUILD_DIR [cmake args...]: a sanitizer build at -O1 -g1 (line tables, enough
# for the reports' stack traces): the sanitize build took ~500 s of CI's ~920 at -O2 -g, ~310 s
# at -O1 -g1; its tests 121 s at -O2, 126 s at -O1.
run_instrumented() {
  local build="$1"
  shift
  RVT_BUILD_TYPE=RelWithDebInfo run_suite "$build" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "$@"
}

run_tsan() {
  # A report ends the process with exit code 66, which no test expects.
  export TSAN_OPTIONS="halt_on_error=1:exitcode=66"
  run_instrumented "$root/build-tsan" -DCMAKE_CXX_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
}

case "${1:-}" in
  --sanitize) run_sanitize; exit 0 ;;
  --tsan) run_tsan; exit 0 ;;
esac

run_suite "$root/build"

if [ "${CI:-}" = "true" ]; then
  echo "test: CI: sanitize build (ASan+UBSan)" >&2
  (run_sanitize)
  if command -v clang++ >/dev/null; then
    echo "test: CI: fuzz targets over their corpora (regression)" >&2
    "$root/scripts/fuzz.sh" --regress
  else
    echo "test: CI: SKIPPED the fuzz regression run: clang++ not found (install clang and libclang-rt-dev)" >&2
  fi
fi
