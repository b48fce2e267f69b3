#!/usr/bin/env bash
# Compiles every kernels/cuda/*.cu for sm_90a with Debian's clang-19 (no CUDA install needed), so a kernel
# that does not compile fails CI on machines without a GPU. Installs clang-19 with apt-get when missing.
# Usage: scripts/cuda-compile-check.sh [OUTDIR]   (the PTX is kept in OUTDIR when given)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-19 >/dev/null; then
  echo "installing clang-19"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-19 >/dev/null
fi
out=${1:-$(mktemp -d)}
mkdir -p "$out"
fail=0
count=0
for cu in kernels/cuda/*.cu; do
  count=$((count + 1))
  ptx="$out/$(basename "${cu%.cu}").ptx"
  if clang-19 -x cuda --cuda-device-only --cuda-gpu-arch=sm_90a -nocudainc -nocudalib \
      -Xclang -target-feature -Xclang +ptx80 -O3 -S -Werror=return-type -I kernels/cuda "$cu" -o "$ptx"; then
    echo "ok    $cu ($(grep -c '^\.visible \.entry' "$ptx") kernels)"
  else
    echo "FAIL  $cu"
    fail=1
  fi
done
[ "$fail" -eq 0 ] && echo "all $count kernel files compile for sm_90a" || { echo "kernel compile check failed"; exit 1; }
