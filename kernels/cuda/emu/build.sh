#!/usr/bin/env bash
# Builds the CPU emulator of the CUDA backend: every kernels/cuda/*.cu compiled as C++ (NR_CUDA_EMU) with its
# extern "C" __global__ kernels registered, plus the driver/NVRTC subset (emu_runtime.cpp), into one shared
# library. Usage: [NR_EMU_PORTABLE=1] build.sh OUTPUT.so   (needs g++ on x86-64 Linux; the fibers switch stacks in
# x86-64 asm).
set -euo pipefail
out=${1:?usage: build.sh OUTPUT.so}
here=$(cd "$(dirname "$0")" && pwd)
cuda=$(dirname "$here")
cxx=${CXX:-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$(uname -m)" != x86_64 ]; then echo "emulator: x86-64 only (this is $(uname -m))" >&2; exit 3; fi
command -v "$cxx" >/dev/null || { echo "emulator: $cxx not found" >&2; exit 3; }

sources=("$here/emu_runtime.cpp")
for cu in "$cuda"/*.cu; do
  [ -e "$cu" ] || continue
  base=$(basename "$cu")
  wrapper="$work/${base%.cu}.emu.cpp"
  {
    echo "#include \"emu/emu_register.h\""
    echo "#include \"$cu\""
    # Every kernel the backend launches is extern "C" __global__ (NVRTC looks it up by that name).
    grep -oE 'extern "C" __global__ (__launch_bounds__\([^)]*\) )?void [A-Za-z_][A-Za-z0-9_]*' "$cu" \
      | sed -E 's/.* void //' | sort -u | while read -r k; do echo "NR_EMU_REGISTER(\"$base\", $k)"; done
  } > "$wrapper"
  sources+=("$wrapper")
done

# Speed of the emulated kernels (numerics unchanged):
# - fmaf (every FMA of the GEMMs, attention, ...) is a call into libm through the PLT unless the compiler may emit
#   the FMA instruction: with -mfma it is one instruction with the same correctly rounded result. Only where this
#   CPU has FMA (the library is built on the machine that uses it).
# - threadIdx and __shared__ are thread_locals of a dlopen'ed library: each access is a __tls_get_addr call in the
#   default TLS dialect; TLS descriptors (gnu2) make it a cheaper call that keeps the registers.
# - -ffp-contract=off keeps every other a·b + c at two roundings, as before (-std=c++17 implies it; said explicitly).
# `nr train --device cuda:emu` at its smallest budgets: 27 s before these flags, about 9 s with them.
arch=(-ffp-contract=off)
supports() { "$cxx" "$@" -x c++ -c /dev/null -o /dev/null 2>/dev/null; }
# NR_EMU_PORTABLE=1 or true (the copy that goes into packages, run on CPUs we do not know): no -mfma.
portable=0
case "${NR_EMU_PORTABLE:-}" in 1 | true) portable=1 ;; esac
if [ $portable = 0 ] && grep -qw fma /proc/cpuinfo 2>/dev/null && supports -mfma; then
  arch+=(-mfma)
fi
if supports -mtls-dialect=gnu2; then arch+=(-mtls-dialect=gnu2); fi

mkdir -p "$(dirname "$out")"
# Each translation unit in parallel, then one link.
objs=()
pids=()
for s in "${sources[@]}"; do
  o="$work/$(basename "$s").o"
  objs+=("$o")
  "$cxx" -std=c++17 -O2 "${arch[@]}" -fPIC -fvisibility=hidden -U_FORTIFY_SOURCE -DNR_CUDA_EMU -I "$cuda" -w -c "$s" -o "$o" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status -eq 0 ] || { echo "emulator: compilation failed" >&2; exit 1; }
"$cxx" -shared -o "$out.tmp" "${objs[@]}" -lpthread
mv -f "$out.tmp" "$out"
echo "emulator: $out ($(ls "$cuda"/*.cu 2>/dev/null | wc -l) kernel files)"
