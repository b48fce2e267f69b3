#!/usr/bin/env bash
# The GPU check in two halves: `pack` here (where .NET is), `run` on the lent GPU machine (which has CUDA, NVRTC,
# PyTorch and Python but no .NET, and must not build anything).
#
#   scripts/gpu-check.sh pack
#       dotnet publish src/Cli and perf/gpu (nr-gpubench) (Release, linux-x64, self-contained, invariant
#       globalization: no ICU needed there) into artifacts/gpu-publish/, compressed into
#       artifacts/gpu-carry/nr-linux-x64.tar.gz (fails above 60 MiB), then prints the device tool's carry list and command line.
#
#   scripts/gpu-check.sh run [--device NAME] [--smoke] [--out DIR] [--archive FILE] [--no-torch]
#       Unpacks the archive to a temporary folder and runs, each stage under its own time limit and going on after
#       a stage fails:
#         info   nr info (+ nvidia-smi)                               -> info.txt
#         check  nr check --device D --json                           -> check.jsonl
#         bench  nr-gpubench --device D --json                         -> ours.jsonl
#         torch  python3 perf/gpu/torch_anchors.py                     -> torch.jsonl
#         table  python3 perf/gpu/compare_table.py                     -> gpu-<card>-<date>.md
#       Everything goes to $OUT (the device tool's result folder; --out or ./artifacts/gpu-out elsewhere), stderr of
#       every stage to stages.log. The stage summary (ok / FAILED rc / TIMED OUT) ends the report and the output.
#       Defaults: --device cuda, full sizes. Environment overrides (for testing here): NR_GPU_DEVICE=cpu|cuda:emu,
#       NR_GPU_SMOKE=1, NR_GPU_PYTHON=/usr/bin/python3 (default python3), NR_GPU_LIMIT_<STAGE>=seconds (INFO 45, CHECK 120, E2E 30, BENCH 180, TORCH 120, TABLE 15: 510 s in
#       all, inside the tool's 600 s command limit). The torch stage runs on CUDA when our device is a GPU and torch
#       sees one, on the CPU when our device is cpu, and is skipped otherwise (cuda:emu, or torch without CUDA).
#       Exit code 0 when every stage that ran succeeded, 1 otherwise.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PUBLISH="$ROOT/artifacts/gpu-publish"
CARRY_DIR="artifacts/gpu-carry"
ARCHIVE_NAME="nr-linux-x64.tar.gz"
MAX_MIB=60

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# ------------------------------------------------------------------------------------------------ pack
pack() {
  set -e
  command -v dotnet >/dev/null || { echo "pack: dotnet not found (pack runs where .NET is, not on the GPU machine)" >&2; exit 1; }
  rm -rf "$PUBLISH" "$ROOT/$CARRY_DIR"
  mkdir -p "$PUBLISH" "$ROOT/$CARRY_DIR"
  echo "pack: dotnet publish src/Cli and perf/gpu -c Release -r linux-x64 --self-contained (invariant globalization)" >&2
  # nr and the benchmark program (perf/gpu) share one folder: both are self-contained on the same runtime and
  # engine assemblies, so the second publish adds little beyond its own dll.
  local project
  for project in src/Cli/NativeReasoner.Cli.csproj perf/gpu/NativeReasoner.GpuBench.csproj; do
    dotnet publish "$ROOT/$project" -c Release -r linux-x64 --self-contained true \
      -p:InvariantGlobalization=true -p:DebugType=none -p:GenerateDocumentationFile=false \
      -o "$PUBLISH/nr" -nologo -v q >&2
  done
  [ -x "$PUBLISH/nr/nr" ] || { echo "pack: $PUBLISH/nr/nr was not produced" >&2; exit 1; }
  [ -x "$PUBLISH/nr/nr-gpubench" ] || { echo "pack: $PUBLISH/nr/nr-gpubench was not produced" >&2; exit 1; }
  # Which source this is, for the report (the machine has no git history of it).
  {
    echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "branch: $(git -C "$ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
    echo "packed: $(date -u +%FT%TZ) on $(hostname)"
  } > "$PUBLISH/nr/BUILD_INFO"
  # The published binary must start without ICU and without an installed .NET.
  DOTNET_ROOT=/nonexistent "$PUBLISH/nr/nr" --help >/dev/null || { echo "pack: the published nr does not start" >&2; exit 1; }
  DOTNET_ROOT=/nonexistent "$PUBLISH/nr/nr-gpubench" --list >/dev/null ||
    { echo "pack: the published nr-gpubench does not start" >&2; exit 1; }
  tar -C "$PUBLISH" -czf "$ROOT/$CARRY_DIR/$ARCHIVE_NAME" nr
  local bytes mib
  bytes=$(stat -c %s "$ROOT/$CARRY_DIR/$ARCHIVE_NAME")
  mib=$(( (bytes + 1048575) / 1048576 ))
  if [ "$bytes" -gt $(( MAX_MIB * 1048576 )) ]; then
    echo "pack: the archive is $mib MiB, over the $MAX_MIB MiB limit (the device tool carries 64 MiB with the tree)" >&2
    exit 1
  fi
  git -C "$ROOT" check-ignore -q "$CARRY_DIR/$ARCHIVE_NAME" || { echo "pack: $CARRY_DIR is not git-ignored; carry needs an ignored path" >&2; exit 1; }
  cat <<EOF
pack: $CARRY_DIR/$ARCHIVE_NAME, $bytes bytes ($mib MiB), $(cat "$PUBLISH/nr/BUILD_INFO" | head -1)

Device tool call (from the checkout that holds this commit; the run builds nothing there):
  carry:     ["$CARRY_DIR"]
  command:   bash scripts/gpu-check.sh run
  timeout_s: 570
Results under \$OUT: gpu-<card>-<date>.md (the table), ours.jsonl, torch.jsonl, check.jsonl, info.txt, stages.log.
Copy the .md to perf/results/ afterwards.
EOF
}

# ------------------------------------------------------------------------------------------------ run
STAGES=()   # "name|status|seconds"
FAILED=0

PY="${NR_GPU_PYTHON:-python3}"   # the device machine's python3 is the one that holds PyTorch

limit() { local v="NR_GPU_LIMIT_${1^^}"; echo "${!v:-$2}"; }

# stage NAME DEFAULT_LIMIT STDOUT_FILE COMMAND...: runs under `timeout`, stdout to the file, stderr to stages.log.
stage() {
  local name=$1 lim; lim=$(limit "$1" "$2"); local out=$3; shift 3
  local t0=$SECONDS rc
  echo "== $name (limit ${lim}s): $*" | tee -a "$LOG" >&2
  timeout -k 10 "$lim" "$@" > "$out" 2>> "$LOG"
  rc=$?
  local dt=$((SECONDS - t0)) status
  if [ $rc -eq 0 ]; then status=ok
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status="TIMED OUT after ${lim}s"; FAILED=1
  else status="FAILED (exit $rc)"; FAILED=1
  fi
  echo "== $name: $status in ${dt}s" | tee -a "$LOG" >&2
  STAGES+=("$name|$status|$dt")
}

skip() { STAGES+=("$1|skipped: $2|0"); echo "== $1: skipped: $2" | tee -a "$LOG" >&2; }

# NVRTC ships with the CUDA toolkit and with PyTorch's wheels; the backend dlopens libnvrtc.so.13 (then .12).
find_nvrtc() {
  ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.1[23]' && return 0
  local d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
           $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null | tr ' ' '\n' | sed 's|$|/nvidia/cu13/lib|') \
           $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null | tr ' ' '\n' | sed 's|$|/nvidia/cuda_nvrtc/lib|'); do
    if ls "$d"/libnvrtc.so.1[23]* >/dev/null 2>&1; then
      export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      echo "run: NVRTC from $d" >&2
      return 0
    fi
  done
  echo "run: no libnvrtc.so.13/.12 found; nr info will say why CUDA is unavailable" >&2
}

run() {
  local device="${NR_GPU_DEVICE:-cuda}" smoke="${NR_GPU_SMOKE:-0}" out="${OUT:-$ROOT/artifacts/gpu-out}"
  local archive="$ROOT/$CARRY_DIR/$ARCHIVE_NAME" torch=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --device) device=$2; shift 2 ;;
      --smoke) smoke=1; shift ;;
      --out) out=$2; shift 2 ;;
      --archive) archive=$2; shift 2 ;;
      --no-torch) torch=0; shift ;;
      *) usage ;;
    esac
  done
  mkdir -p "$out"
  LOG="$out/stages.log"
  : > "$LOG"
  [ -f "$archive" ] || { echo "run: $archive is missing: run 'scripts/gpu-check.sh pack' here and carry $CARRY_DIR" | tee -a "$LOG" >&2; exit 1; }

  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  local work=$WORK
  tar -C "$work" -xzf "$archive" || { echo "run: cannot unpack $archive" | tee -a "$LOG" >&2; exit 1; }
  local nr="$work/nr/nr"
  export NR_CUDA_CACHE="$work/cuda-cache" DOTNET_CLI_TELEMETRY_OPTOUT=1 PYTHONUNBUFFERED=1
  find_nvrtc

  local card="" date smokeflag=()
  date=$(date -u +%F)
  [ "$smoke" = 1 ] && smokeflag=(--smoke)
  case "$device" in
    cuda:emu*) ;;
    cuda*) card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) ;;
  esac
  [ -n "$card" ] || card="$device-$(hostname -s 2>/dev/null || echo host)"
  local slug; slug=$(echo "$card" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; s/^-+|-+$//g')
  local report="$out/gpu-$slug-$date.md"
  echo "run: device $device, card '$card', $([ "$smoke" = 1 ] && echo smoke || echo full) sizes, results in $out" | tee -a "$LOG" >&2

  stage info 45 "$out/info.txt" bash -c "cat '$work/nr/BUILD_INFO'; '$nr' info; echo; nvidia-smi 2>&1 || echo 'nvidia-smi: not available'"
  stage check 120 "$out/check.jsonl" "$nr" check --device "$device" --json
  # Tiered JIT off: every timed call runs fully optimised host code from the first (the steady state of a long run),
  # instead of tier-0 code for methods a benchmark calls fewer than 30 times.
  # End to end: the tiny golden model's logits on the device, full forward and cached decode,
  # against the official code's outputs: the fp32 path (must be within 1e-4) and, reported beside it, bf16 matrix
  # products (autocast; a loose 0.1 limit only catches a broken bf16 path).
  local fx="$ROOT/tests/fixtures/deepseek-v3-tiny-yarn"
  stage e2e 30 "$out/e2e.txt" bash -c "'$nr' logits --model '$fx' --input '$fx/golden.safetensors' --out '$work/full.safetensors' --device '$device' &&
    '$nr' logits --model '$fx' --input '$fx/golden.safetensors' --out '$work/decode.safetensors' --decode-from 33 --device '$device' &&
    '$PY' '$ROOT/perf/gpu/compare_logits.py' '$fx/golden.safetensors' '$work/full.safetensors' '$work/decode.safetensors' --label fp32 &&
    '$nr' logits --model '$fx' --input '$fx/golden.safetensors' --out '$work/full16.safetensors' --device '$device' --bf16 &&
    '$nr' logits --model '$fx' --input '$fx/golden.safetensors' --out '$work/decode16.safetensors' --decode-from 33 --device '$device' --bf16 &&
    '$PY' '$ROOT/perf/gpu/compare_logits.py' '$fx/golden.safetensors' '$work/full16.safetensors' '$work/decode16.safetensors' --label 'bf16 matmuls' --limit 0.1"
  stage bench 180 "$out/ours.jsonl" env DOTNET_TieredCompilation=0 "$work/nr/nr-gpubench" --device "$device" --json \
    "${smokeflag[@]}"

  local tdev=""
  if [ $torch = 0 ]; then skip torch "--no-torch"
  elif [ "$device" = cpu ]; then tdev=cpu
  elif [[ "$device" == cuda:emu* ]]; then skip torch "our device is the CUDA emulator (no GPU to compare on)"
  elif "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>>"$LOG"; then tdev=cuda
  else skip torch "python3's torch sees no CUDA device"
  fi
  [ -n "$tdev" ] && stage torch 120 "$out/torch.jsonl" "$PY" "$ROOT/perf/gpu/torch_anchors.py" --device "$tdev" "${smokeflag[@]}"

  local torch_file=""; [ -s "$out/torch.jsonl" ] && torch_file="$out/torch.jsonl"
  stage table 15 "$report" "$PY" "$ROOT/perf/gpu/compare_table.py" "$out/ours.jsonl" $torch_file --check "$out/check.jsonl" \
    --title "GPU benchmarks: $card, $date"

  {
    echo
    echo "## Run"
    echo
    echo "- $(head -1 "$work/nr/BUILD_INFO")"
    echo "- device \`$device\`, card $card, $([ "$smoke" = 1 ] && echo smoke || echo full) sizes, $(date -u +%FT%TZ)"
    echo
    echo "| stage | result | seconds |"
    echo "|---|---|---|"
    local s
    for s in "${STAGES[@]}"; do IFS='|' read -r n st dt <<< "$s"; echo "| $n | $st | $dt |"; done
  } >> "$report"
  cat "$report"
  [ $FAILED = 0 ]
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  *) usage ;;
esac
