#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (unit + CLI) through ctest.
# Idempotent. --sanitize builds with ASan+UBSan into build-sanitize/ instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
build="$root/build"
extra=()
if [ "${1:-}" = "--sanitize" ]; then
  build="$root/build-sanitize"
  extra=(-DRVT_SANITIZE=ON)
  export RVT_BUILD_TYPE=RelWithDebInfo
fi
RVT_BUILD_DIR="$build" "$root/scripts/build.sh" "${extra[@]}"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
