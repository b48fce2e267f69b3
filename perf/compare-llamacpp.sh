#!/usr/bin/env bash
# This engine and llama.cpp (the prebuilt libllama.so of NuGet's LLamaSharp.Backend.Cpu 0.30.0, loaded through
# LLamaSharp 0.30.0 from the perf project only) on the same GGUF files, same threads, alternating order:
# prefill tokens/s, decode tokens/s at batch 1 and 16, and the logits of both on one prompt.
#
#   perf/compare-llamacpp.sh [--shapes qwen2-small,qwen2.5-0.5b,r1-distill-qwen-1.5b,bench-tiny,deepseek-moe-0.75b]
#                            [--dtypes f32,f16,bf16,q8_0,q4_k]
#                            [--threads 2] [--prompt 512] [--decode 16] [--rounds 2] [--out perf/results/FILE.md]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build perf/NativeReasoner.Perf.csproj -c Release -v q -nologo >/dev/null
exec dotnet perf/bin/Release/net10.0/NativeReasoner.Perf.dll compare-llamacpp "$@"
