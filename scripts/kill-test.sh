#!/usr/bin/env bash
# The long form of the SIGKILL harnesses (tests/RL/KillTests.cs for `nr train`, tests/Reliability/PipelineKillTests.cs
# for `nr pipeline r1`): kills each run KILLS times (default 10) at random moments, reruns it until it finishes, and
# checks the result against an uninterrupted run. Prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
export NR_KILL_TEST_KILLS="${1:-10}"
dotnet build tests/NativeReasoner.Tests.csproj -c Release >/dev/null
dotnet test tests/NativeReasoner.Tests.csproj -c Release --no-build \
  --filter "FullyQualifiedName~KillTests" --logger "console;verbosity=detailed"
