#!/usr/bin/env bash
# Configures and builds into build/ (or $RVT_BUILD_DIR). Extra arguments go to cmake.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${RVT_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${RVT_BUILD_TYPE:-Release}" "$@" >&2
cmake --build "$build" -j "$(nproc)" >&2
