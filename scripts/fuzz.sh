#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++, ASan+UBSan) into build-fuzz/ and fuzzes each one.
#   scripts/fuzz.sh [seconds] [target...]   fuzz each target for `seconds` (default 600), in turn;
#                                           new inputs go to build-fuzz/corpus/<target>/, crashes
#                                           to tests/fuzz/crashes/ (then: fix, add to the corpus)
#   scripts/fuzz.sh --regress [target...]   run each target once over its seed corpus (CI)
# Targets: fuzz_blob fuzz_npy fuzz_cli_numbers (default: all).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${RVT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
mode=fuzz
seconds=600
known=(fuzz_blob fuzz_npy fuzz_cli_numbers)
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0
elif [ "${1:-}" = "--regress" ]; then mode=regress; shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds="$1"; shift
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${known[@]}")
for t in "${targets[@]}"; do  # before configuring anything: a typo is a usage error
  [[ " ${known[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (targets: ${known[*]}; seconds come first)" >&2; exit 2; }
done

cxx="${RVT_FUZZ_CXX:-clang++}"
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found" >&2; exit 1; }
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DRVT_FUZZ=ON -DRVT_SIMD=OFF -DRVT_BUILD_TESTS=OFF >&2
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >&2

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
crashes="$root/tests/fuzz/crashes"
status=0
for t in "${targets[@]}"; do
  corpus="$root/tests/fuzz/corpus/$t"
  if [ "$mode" = regress ]; then
    echo "fuzz: $t over $(ls "$corpus" | wc -l) corpus files" >&2
    "$build/tests/fuzz/$t" -runs=0 "$corpus" || status=1
  else
    mkdir -p "$crashes" "$build/corpus/$t"
    echo "fuzz: $t for ${seconds}s" >&2
    "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$crashes/$t-" "$build/corpus/$t" "$corpus" || status=1
  fi
done
exit $status
