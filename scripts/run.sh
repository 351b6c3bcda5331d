#!/usr/bin/env bash
# The main job on built-in defaults: installs what is needed, builds, then
#   1. writes the reference default RVNE blob and verifies it (byte-identical to the Rust toolchain's),
#   2. runs the temporal head from that blob over generated frames, dense and sparse,
#   3. runs sparse vs dense attention on the AETHER preset and streams it token by token.
# Idempotent: outputs go to out/ and are overwritten. Extra arguments are ignored.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
bin="${RVT_BUILD_DIR:-$root/build}/apps/rvtemporal"
out="$root/out"
mkdir -p "$out"
set -x
"$bin" blob init --out "$out/default.rvne" --force
"$bin" blob verify "$out/default.rvne" --expect-xxh3 7dfd4dd2b7a1928e
"$bin" forward --blob "$out/default.rvne" --gen-frames 256 --backend sparse --out "$out/logits_sparse.npy"
"$bin" forward --blob "$out/default.rvne" --gen-frames 256 --backend dense --out "$out/logits_dense.npy"
"$bin" forward --preset aether --seq 4096 --backend sparse --out "$out/attn_sparse.npy" --out-report "$out/forward_sparse.json"
"$bin" forward --preset aether --seq 4096 --backend dense --out "$out/attn_dense.npy" --out-report "$out/forward_dense.json"
"$bin" stream --preset aether --seq 4096 --out-report "$out/stream.json"
