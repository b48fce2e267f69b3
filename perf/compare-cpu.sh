#!/usr/bin/env bash
# Our CPU kernels against PyTorch/OpenBLAS on this machine, in one run, as one table.
#
#   perf/compare-cpu.sh [--rounds N] [--quick] [--save]
#
# Installs what it needs (python3-torch, libopenblas0-pthread), builds the CLI in Release, then runs rounds in
# which every shape is measured by `nr bench ...` and by perf/anchors.py back to back (alternating which goes
# first), so that both sides see the same background load; per row it reports each side's best round and the
# median of the per-round ratios, which the targets are judged on. Prints the table (op, shape, ours, anchor, ratio, % of the
# measured FMA peak), then the bench-tiny model table (`nr bench model` vs perf/anchor_model.py: training
# step and batch-16 decode in tokens/s, against the CPU targets in perf/compare_table.py) and, with --save, also writes it to
# perf/results/compare-cpu-<machine>-<date>.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY=/usr/bin/python3
ROUNDS=2
QUICK=0
SAVE=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --quick) QUICK=1; ROUNDS=1; shift ;;
    --save) SAVE=1; shift ;;
    *) echo "usage: $0 [--rounds N] [--quick] [--save]" >&2; exit 2 ;;
  esac
done

# ---------------------------------------------------------------- dependencies
need=()
[[ -x "$PY" ]] && "$PY" -c "import torch" 2>/dev/null || need+=(python3-torch)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || need+=(libopenblas0-pthread)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get install -y "${need[@]}" >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${need[@]}" >/dev/null; }
fi

# ---------------------------------------------------------------- build
dotnet build "$ROOT/src/Cli/NativeReasoner.Cli.csproj" -c Release -nologo -v q >&2
NR=(dotnet "$ROOT/src/Cli/bin/Release/net10.0/nr.dll")
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- the anchor's environment
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force a slow kernel on these machines: unset them for the anchor only.
ANCHOR_ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2)
# OpenBLAS's runtime dispatch may not know a newer CPU model and fall back to a generic SSE3 kernel
# ("Prescott"); then name the best AVX-512 kernel it has, so the anchor is as strong as this OpenBLAS gets.
core=$("${ANCHOR_ENV[@]}" "$PY" "$ROOT/perf/anchors.py" --info | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline()).get("openblas_core",""))')
forced=""
if grep -qw avx512f /proc/cpuinfo && [[ -n "$core" ]] && ! [[ "$core" =~ ^(SkylakeX|Cooperlake|SapphireRapids|Zen)$ ]]; then
  if grep -qw avx512_bf16 /proc/cpuinfo; then forced=CooperLake; else forced=SkylakeX; fi
  ANCHOR_ENV+=(OPENBLAS_CORETYPE=$forced)
fi

# ---------------------------------------------------------------- shapes
GEMM=("256 256 256" "512 512 512" "1024 1024 1024" "2048 2048 2048"
      "2048 128 128" "2048 384 128" "2048 128 384" "2048 512 128")  # bench-tiny: 16×128 tokens, hidden 128, MLP 384
GEMM_1T=("1024 1024 1024" "2048 2048 2048")                       # 1-thread rows: the 2-thread scaling
ATTN="1,8,512,64"
MEM_T=(512 1024 2048 4096 8192)
ANCHOR_MEM_T=(512 1024 2048 4096)  # T=8192 would need ~6 GiB of T×T buffers in the anchor
TIME=2; WARM=1
MODEL_THREADS=2
# The anchor's model step takes about a second a step here: 3+ warm-up and 10 timed steps, then a warm-up decode
# run and the best of 3; --quick keeps the rows but times fewer.
ANCHOR_MODEL_ARGS=(--threads $MODEL_THREADS)
if [[ $QUICK -eq 1 ]]; then
  TIME=1; MEM_T=(512 2048 8192); ANCHOR_MEM_T=(512 2048)
  ANCHOR_MODEL_ARGS+=(--warmup-steps 2 --steps 3 --rounds 1)
fi


# Every measurement is a pair: ours and the anchor back to back on the same shape, so both see the same
# background load; the order alternates from round to round (odd rounds ours first). Every JSON line gets its
# round number, and compare_table.py reports the median of the per-round ratios next to best-vs-best.
tag() { sed -e "s/}\$/, \"round\": $1}/"; }
pair() {  # pair ROUND "ours command" "anchor command"
  if (( $1 % 2 == 1 )); then
    eval "$2" | tag "$1" >> "$TMP/ours.jsonl"; eval "$3" | tag "$1" >> "$TMP/anchors.jsonl"
  else
    eval "$3" | tag "$1" >> "$TMP/anchors.jsonl"; eval "$2" | tag "$1" >> "$TMP/ours.jsonl"
  fi
}

paired_round() {
  local r=$1 s M N K
  "${NR[@]}" bench peak --json --time 1 --trials 3 | tag "$r" >> "$TMP/ours.jsonl"
  for s in "${GEMM[@]}"; do
    read -r M N K <<< "$s"
    pair "$r" '"${NR[@]}" bench gemm --m $M --n $N --k $K --json --warmup $WARM --time $TIME' \
              '"${ANCHOR_ENV[@]}" "$PY" "$ROOT/perf/anchors.py" --threads 2 --gemm "$M,$N,$K" --warmup $WARM --time $TIME'
  done
  # ours only: bf16 operands
  "${NR[@]}" bench gemm --m 1024 --n 1024 --k 1024 --bf16 --json --warmup $WARM --time $TIME | tag "$r" >> "$TMP/ours.jsonl"
  for s in "${GEMM_1T[@]}"; do
    read -r M N K <<< "$s"
    pair "$r" '"${NR[@]}" bench gemm --m $M --n $N --k $K --threads 1 --json --warmup $WARM --time $TIME' \
              '"${ANCHOR_ENV[@]}" OMP_NUM_THREADS=1 "$PY" "$ROOT/perf/anchors.py" --threads 1 --gemm "$M,$N,$K" --warmup $WARM --time $TIME'
  done
  IFS=, read -r B H T D <<< "$ATTN"
  pair "$r" '"${NR[@]}" bench attention --batch $B --heads $H --seq $T --head-dim $D --causal --json --warmup $WARM --time $TIME;
             "${NR[@]}" bench attention --batch $B --heads $H --seq $T --head-dim $D --causal --backward --json --warmup $WARM --time $TIME' \
            '"${ANCHOR_ENV[@]}" "$PY" "$ROOT/perf/anchors.py" --threads 2 --attention "$ATTN" --warmup $WARM --time $TIME'
  # The model rows: a failure of ours (an older nr without `bench model`) leaves those rows with the anchor only.
  pair "$r" '"${NR[@]}" bench model --json || echo "warning: nr bench model failed; the model table shows the anchor only" >&2' \
            '"${ANCHOR_ENV[@]}" "$PY" "$ROOT/perf/anchor_model.py" "${ANCHOR_MODEL_ARGS[@]}"'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
"${ANCHOR_ENV[@]}" "$PY" "$ROOT/perf/anchors.py" --info > "$TMP/info.jsonl"
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS (ours and the anchor, shape by shape)" >&2
  paired_round "$r"
done
echo "memory probe" >&2
for T in "${MEM_T[@]}"; do
  "${NR[@]}" bench attention --batch 1 --heads 8 --seq "$T" --head-dim 64 --causal --json --warmup 0 --time 0 --min-reps 2 >> "$TMP/ours_mem.jsonl"
done
mem_spec=$(printf '1,8,%s,64;' "${ANCHOR_MEM_T[@]}")
"${ANCHOR_ENV[@]}" "$PY" "$ROOT/perf/anchors.py" --threads 2 --attn-mem "$mem_spec" >> "$TMP/anchors.jsonl"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
slug=$(echo "$machine" | tr 'A-Z' 'a-z' | sed -e 's/([^)]*)//g' -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')-$(nproc)c
report() {
  echo "# CPU comparison: ours vs PyTorch/OpenBLAS"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - start )) s, rounds: $ROUNDS (per row: each side's best round, and the median of the rounds' paired ratios)"
  echo "- machine: $machine, $(nproc) cores ($(grep -o -w -E 'avx512f|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')), $(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1) guest"
  echo "- load average (1/5/15 min): before $load_before, after $load_after — a shared machine: the ratios come from one run, absolute numbers move with the load"
  echo "- ours: $("${NR[@]}" info --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["nr"], "/", d[".net"], "/", d["simd width"])')"
  "$PY" - "$TMP/info.jsonl" "$forced" "$core" <<'EOF'
import json, sys
info = json.loads(open(sys.argv[1]).readline())
forced, core = sys.argv[2], sys.argv[3] or "?"
print(f"- anchor: torch {info['torch']} (BLAS_INFO={info['torch_blas_info']}), {info.get('openblas_config', 'no OpenBLAS loaded')}")
print(f"- OpenBLAS kernel: autodetected `{core}` with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset"
      + (f"; that is not an AVX-512 kernel (this OpenBLAS does not know the CPU model), so the anchor runs with "
         f"OPENBLAS_CORETYPE={forced} → `{info.get('openblas_core', '?')}`, the fastest AVX-512 kernel it has"
         if forced else ""))
if "threadpoolctl" in info:
    print(f"- threadpoolctl: {info['threadpoolctl']}")
EOF
  echo "- model anchor: perf/anchor_model.py, bench-tiny in the structure of the official DeepSeek-V3 inference/model.py (MLA with the absorb attention and the compressed kv/pe caches, sigmoid group-limited gate, the official per-expert MoE loop), torch fp32, $MODEL_THREADS threads, same OpenBLAS setup; training step = forward with autograd + cross-entropy + backward + AdamW + gate bias update, decode = greedy through the cache after a 32-token prompt"
  echo "- ratio = anchor ms / ours ms (> 1: ours faster); best/best = each side's best round; paired = the median (and range) over the rounds of the ratio of that round's back-to-back pair, on which the targets are judged; % peak = ours over the measured FMA peak at the same thread count"
  echo
  "$PY" "$ROOT/perf/compare_table.py" "$TMP/ours.jsonl" "$TMP/anchors.jsonl" "$TMP/ours_mem.jsonl"
}
report | tee "$TMP/report.md"
if [[ $SAVE -eq 1 ]]; then
  out="$ROOT/perf/results/compare-cpu-$slug-$(date -u +%Y-%m-%d).md"
  cp "$TMP/report.md" "$out"
  echo "saved $out" >&2
fi
