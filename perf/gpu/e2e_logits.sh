#!/usr/bin/env bash
# End to end on the device: every model family's tiny reference checkpoint under tests/fixtures (DeepSeek-V3 with
# YaRN and its q-LoRA variant, DeepSeek-V2 greedy and group-limited routing, Llama, Qwen2, Qwen3, Qwen3-MoE) through
# `nr logits` on DEVICE, full forward and, where the reference has them, cached decode logits, against the outputs of
# the family's reference code (perf/gpu/compare_logits.py): the fp32 path within 1e-4, and bf16 matrix products
# (`--bf16`, autocast) reported beside it with a loose limit that only catches a broken bf16 path: 0.1 for the dense
# families, 0.25 for the routed ones (on these tiny random models bf16 rounding flips a few top-k expert choices,
# which moves those tokens' logits by ~0.1 relative; a broken path is off by ~1).
#
#   perf/gpu/e2e_logits.sh NR DEVICE WORKDIR [PYTHON]
#
# One line per comparison on stdout; exit 1 when any family failed (the others still run).
set -uo pipefail
nr=$1 device=$2 work=$3 py=${4:-python3}
root="$(cd "$(dirname "$0")/../.." && pwd)"
fixtures="$root/tests/fixtures"
compare="$root/perf/gpu/compare_logits.py"
failed=0
families="deepseek-v3-tiny-yarn deepseek-v3-ref-qlora deepseek-v2-ref-greedy deepseek-v2-ref-grouped
          llama-tiny-ref qwen2-tiny-ref qwen3-tiny-ref qwen3-moe-tiny-ref"
# NR_GPU_E2E_FAMILIES (fixture names, space-separated) narrows the list (the smoke test of scripts/gpu-check.sh).
for fx in ${NR_GPU_E2E_FAMILIES:-$families}; do
  dir="$fixtures/$fx"
  golden="$dir/golden.safetensors"; [ -f "$golden" ] || golden="$dir/expected.safetensors"
  if [ ! -f "$golden" ]; then echo "$fx: FAILED: no golden.safetensors or expected.safetensors in $dir"; failed=1; continue; fi
  read -r T D < <("$py" "$compare" "$golden" --shape) || { echo "$fx: FAILED: cannot read $golden"; failed=1; continue; }
  loose=0.1
  case $fx in deepseek-*|*-moe-*) loose=0.25 ;; esac
  for precision in fp32 bf16; do
    flag=() limit=1e-4 label="$fx fp32"
    [ $precision = bf16 ] && flag=(--bf16) limit=$loose label="$fx bf16 matmuls"
    full="$work/$fx-$precision-full.safetensors" decode=-
    if ! "$nr" logits --model "$dir" --input "$golden" --out "$full" --device "$device" "${flag[@]}" >/dev/null; then
      echo "$label: FAILED: nr logits (full forward) exited non-zero"; failed=1; continue
    fi
    if [ "$D" -gt 0 ]; then
      decode="$work/$fx-$precision-decode.safetensors"
      if ! "$nr" logits --model "$dir" --input "$golden" --out "$decode" --decode-from $((T - D)) --device "$device" \
          "${flag[@]}" >/dev/null; then
        echo "$label: FAILED: nr logits --decode-from $((T - D)) exited non-zero"; failed=1; continue
      fi
    fi
    "$py" "$compare" "$golden" "$full" "$decode" --label "$label" --limit $limit || failed=1
  done
done
exit $failed
