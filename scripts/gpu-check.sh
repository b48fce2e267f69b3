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
#       Unpacks the archive to a temporary folder and runs, each stage under its own time limit, all of them inside
#       one time budget (540 s: the check must finish in 9 minutes on an H100), going on after a stage fails:
#         info     nr info (+ nvidia-smi)                                       -> info.txt
#         compile  nr-gpubench --compile: NVRTC compile of every kernel file     -> compile.jsonl
#         check    nr check --device D --json: the conformance suite             -> check.jsonl
#         e2e      perf/gpu/e2e_logits.sh: every family's logits vs reference    -> e2e.txt
#         bench    nr-gpubench --json, the kernel benchmarks                     -> ours.jsonl
#         model    nr-gpubench --bf16 --only train,decode: bf16 training steps   -> ours-model.jsonl
#                  (110M DeepSeek-V3, Qwen2.5-0.5B shape; tokens/s, MFU), decode tokens/s at batch 1/16/64
#         serve    nr bench serve --device D --bf16 --concurrency 32             -> serve.txt
#         torch    python3 perf/gpu/torch_anchors.py (incl. AMP training steps)  -> torch.jsonl
#         table    python3 perf/gpu/compare_table.py                             -> gpu-<card>-<date>.md
#       Every stage prints its time. A stage that needs a CLI flag the packed nr lacks (the serve stage needs
#       `--device` and `--bf16` on `nr bench serve`) prints "stage skipped: ..." naming the flag instead of failing.
#       A stage that would start with less than 10 s of the budget left is skipped; one that would overrun it gets
#       only what is left. Everything goes to $OUT (the device tool's result folder; --out or ./artifacts/gpu-out
#       elsewhere), stderr of every stage to stages.log. The stage summary (ok / FAILED rc / TIMED OUT / skipped)
#       ends the report and the output.
#       Defaults: --device cuda, full sizes. Environment overrides (for testing here): NR_GPU_DEVICE=cpu|cuda:emu,
#       NR_GPU_SMOKE=1, NR_GPU_PYTHON=/usr/bin/python3 (default python3), NR_GPU_BUDGET=seconds (540),
#       NR_GPU_LIMIT_<STAGE>=seconds (INFO 20, COMPILE 45, CHECK 90, E2E 40, BENCH 110, MODEL 90, SERVE 40,
#       TORCH 95, TABLE 10), NR_GPU_CHECK_FILTER=TEXT (nr check --filter), NR_GPU_E2E_FAMILIES="fixture ..." (the
#       families of the e2e stage). The torch stage runs on CUDA when our device is a GPU and torch sees one, on the CPU
#       when our device is cpu, and is skipped otherwise (cuda:emu, or torch without CUDA).
#       Exit code 0 when every stage that ran succeeded, 1 otherwise.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PUBLISH="$ROOT/artifacts/gpu-publish"
CARRY_DIR="artifacts/gpu-carry"
ARCHIVE_NAME="nr-linux-x64.tar.gz"
MAX_MIB=60

usage() { sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

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

BUDGET="${NR_GPU_BUDGET:-540}"   # seconds for all stages together
RUN_START=$SECONDS

# stage NAME DEFAULT_LIMIT STDOUT_FILE COMMAND...: runs under `timeout`, stdout to the file, stderr to stages.log; its
# limit is cut to what is left of the budget, and it is skipped when less than 10 s are left.
stage() {
  local name=$1 lim; lim=$(limit "$1" "$2"); local out=$3; shift 3
  local left=$((BUDGET - (SECONDS - RUN_START)))
  if [ "$left" -lt 10 ]; then skip "$name" "time budget spent (${BUDGET}s; ${left}s left)"; return; fi
  [ "$lim" -gt "$left" ] && lim=$left
  local t0=$SECONDS rc
  echo "== $name (limit ${lim}s, ${left}s of the budget left): $*" | tee -a "$LOG" >&2
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

# has_flags "NR SUBCOMMAND..." FLAG...: true when the subcommand's --help lists every flag.
has_flags() {
  local cmd=$1 help f; shift
  help=$($cmd --help 2>&1) || return 1
  for f in "$@"; do grep -q -- "$f\b" <<< "$help" || return 1; done
}

skip() { STAGES+=("$1|skipped: $2|0"); echo "== $1: stage skipped: $2" | tee -a "$LOG" >&2; }

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

  stage info 20 "$out/info.txt" bash -c "cat '$work/nr/BUILD_INFO'; '$nr' info; echo; nvidia-smi 2>&1 || echo 'nvidia-smi: not available'"
  # NVRTC compiles every kernel file for the card first (one row per file; the images land in NR_CUDA_CACHE, which
  # the later stages read), so a kernel that does not compile for this arch is named before anything trips on it.
  # Tiered JIT off in the benchmark stages: every timed call runs fully optimised host code from the first (the
  # steady state of a long run), instead of tier-0 code for methods a benchmark calls fewer than 30 times.
  local bench="$work/nr/nr-gpubench"
  case "$device" in
    cuda*) stage compile 45 "$out/compile.jsonl" "$bench" --device "$device" --compile --json ;;
    *) skip compile "device $device is not a CUDA device (no kernels to compile)" ;;
  esac
  local filter=()
  [ -n "${NR_GPU_CHECK_FILTER:-}" ] && filter=(--filter "$NR_GPU_CHECK_FILTER")
  stage check 90 "$out/check.jsonl" "$nr" check --device "$device" --json "${filter[@]}"
  # End to end: every family's tiny reference checkpoint, full forward and cached decode, against the reference
  # code's outputs: the fp32 path (must be within 1e-4) and, reported beside it, bf16 matrix products (autocast).
  stage e2e 40 "$out/e2e.txt" "$ROOT/perf/gpu/e2e_logits.sh" "$nr" "$device" "$work" "$PY"
  stage bench 110 "$out/ours.jsonl" env DOTNET_TieredCompilation=0 "$bench" --device "$device" --json \
    --only copy,gemm,softmax,rmsnorm,silu_mul,adamw,attention,mla_decode,moe "${smokeflag[@]}"
  # The model benchmarks in bf16 mixed precision (paired with torch's AMP steps in the table): the ~110M
  # DeepSeek-V3 and the Qwen2.5-0.5B-shaped training steps (tokens/s, MFU), decode at batch 1/16/64.
  stage model 90 "$out/ours-model.jsonl" env DOTNET_TieredCompilation=0 "$bench" --device "$device" --json --bf16 \
    --only train,decode "${smokeflag[@]}"
  # The server's throughput at concurrency 32 on the device in bf16 (a build without these flags skips the stage).
  local serve_args=(--concurrency 32 --requests-per-client 2 --max-tokens 64 --long-requests 0)
  [ "$smoke" = 1 ] && serve_args=(--preset tiny --concurrency 2 --requests-per-client 1 --max-tokens 4 --long-requests 0)
  if has_flags "$nr bench serve" --device --bf16; then
    stage serve 40 "$out/serve.txt" "$nr" bench serve --device "$device" --bf16 "${serve_args[@]}"
  else
    skip serve "'nr bench serve' has no --device/--bf16 flag in this build"
  fi

  local tdev=""
  if [ $torch = 0 ]; then skip torch "--no-torch"
  elif [ "$device" = cpu ]; then tdev=cpu
  elif [[ "$device" == cuda:emu* ]]; then skip torch "our device is the CUDA emulator (no GPU to compare on)"
  elif "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>>"$LOG"; then tdev=cuda
  else skip torch "python3's torch sees no CUDA device"
  fi
  [ -n "$tdev" ] && stage torch 95 "$out/torch.jsonl" "$PY" "$ROOT/perf/gpu/torch_anchors.py" --device "$tdev" "${smokeflag[@]}"

  local torch_file=""; [ -s "$out/torch.jsonl" ] && torch_file="$out/torch.jsonl"
  cat "$out/ours-model.jsonl" >> "$out/ours.jsonl" 2>/dev/null
  stage table 10 "$report" "$PY" "$ROOT/perf/gpu/compare_table.py" "$out/ours.jsonl" $torch_file --check "$out/check.jsonl" \
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
    echo
    echo "All stages: $((SECONDS - RUN_START)) s of the ${BUDGET} s budget."
    for f in compile.jsonl e2e.txt serve.txt; do
      [ -s "$out/$f" ] || continue
      echo
      echo "### $f"
      echo
      echo '```'
      if [ $f = compile.jsonl ]; then grep -v '"status": "ok"' "$out/$f" | head -20; grep -c '"status": "ok"' "$out/$f" | sed 's/$/ files compiled/'
      else tail -40 "$out/$f"; fi
      echo '```'
    done
  } >> "$report"
  cat "$report"
  [ $FAILED = 0 ]
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  *) usage ;;
esac
