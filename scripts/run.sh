#!/usr/bin/env bash
# Installs what is needed, builds, and runs the main job on built-in defaults:
# writes the reference default blob and verifies it, then runs the default
# subcommands on the AETHER preset. Idempotent. Output files go to out/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
bin="${RVT_BUILD_DIR:-$root/build}/apps/rvtemporal"
mkdir -p "$root/out"
"$bin" blob init --out "$root/out/default.rvne" --force
"$bin" blob verify "$root/out/default.rvne" --expect-xxh3 7dfd4dd2b7a1928e
"$bin" blob inspect "$root/out/default.rvne"
