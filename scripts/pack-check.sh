#!/usr/bin/env bash
# Packs the NuGet packages into a local folder feed, checks what is inside them, then uses them the way someone
# outside the repository would: a fresh console app in a temp folder (its own NUGET_PACKAGES, so no cached copy
# of an older build can be picked up; a nuget.config listing only the local feed and nuget.org) adds
# NativeReasoner.Extensions.AI, writes a tiny model and streams replies through IChatClient
# (scripts/pack-check/Program.cs); and the nr tool is installed from the feed into a tool path and runs `nr info`.
# Every step has a time limit; any failure exits non-zero.
# Usage: scripts/pack-check.sh [--keep] [--feed DIR]   (--keep: leave the temp folder; --feed: check the packages
# already in DIR instead of packing)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
keep=0
given_feed=
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --feed) given_feed=$(cd "${2:?--feed needs a folder}" && pwd); shift ;;
    *) echo "usage: scripts/pack-check.sh [--keep] [--feed DIR]" >&2; exit 2 ;;
  esac
  shift
done
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

work=$(mktemp -d /tmp/nr-pack-check.XXXXXX)
cleanup() { if [ $keep = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
feed=$work/feed
fail() { echo "pack-check: $*" >&2; exit 1; }
for tool in unzip objdump timeout; do
  command -v $tool >/dev/null || fail "$tool is needed (Debian: unzip, binutils, coreutils)"
done

version=$(dotnet msbuild src/Package/NativeReasoner.Package.csproj -getProperty:Version)
[ -n "$version" ] || fail "could not read the version"
if [ -n "$given_feed" ]; then
  feed=$given_feed
else
  echo "== pack $version into $feed"
  timeout 1800 dotnet pack NativeReasoner.sln -c Release -o "$feed"
fi

echo "== package contents"
listing() { unzip -Z1 "$feed/$1"; }
expect() { # PACKAGE FILE...: each FILE is in the package
  local pkg=$1; shift
  [ -f "$feed/$pkg" ] || fail "$pkg was not made"
  local files
  files=$(listing "$pkg")
  for f in "$@"; do grep -qxF "$f" <<<"$files" || fail "$pkg lacks $f"; done
}
# Anything from the tests, fixtures, build folders, sources or other tooling is junk in a package.
junk='(^|/)(tests?|fixtures|obj|bin|reference)/|\.cs$|\.csproj$|\.py$|\.safetensors$|[Tt]ests?\.dll$|xunit'
junk+='|BenchmarkDotNet|NativeReasoner\.Package\.dll|NativeReasoner\.Perf'
for pkg in "$feed"/*.nupkg "$feed"/*.snupkg; do
  name=$(basename "$pkg")
  echo "-- $name"
  unzip -l "$pkg" | sed -n '4,$p' | grep -v -- '^---------' | sed '$d' | awk '{ print "   " $1 "\t" $4 }'
  if grep -E "$junk" <<<"$(listing "$name")"; then
    fail "$name holds the files above, which do not belong in a package"
  fi
done

engine=NativeReasoner.$version.nupkg
expect "$engine" README.md runtimes/linux-x64/native/libnrcudaemu.so \
  lib/net10.0/NativeReasoner.Kernels.dll lib/net10.0/NativeReasoner.Tensor.dll \
  lib/net10.0/NativeReasoner.Model.dll lib/net10.0/NativeReasoner.RL.dll \
  lib/net10.0/NativeReasoner.Distributed.dll
expect "NativeReasoner.$version.snupkg" lib/net10.0/NativeReasoner.Kernels.pdb lib/net10.0/NativeReasoner.RL.pdb
expect "NativeReasoner.Extensions.AI.$version.nupkg" README.md lib/net10.0/NativeReasoner.Serving.dll
expect "NativeReasoner.Extensions.AI.$version.snupkg" lib/net10.0/NativeReasoner.Serving.pdb
expect "NativeReasoner.Server.$version.nupkg" README.md lib/net10.0/NativeReasoner.Server.dll
expect "NativeReasoner.Server.$version.snupkg" lib/net10.0/NativeReasoner.Server.pdb
expect "NativeReasoner.Cli.$version.nupkg" README.md tools/net10.0/any/nr.dll tools/net10.0/any/DotnetToolSettings.xml \
  tools/net10.0/any/NativeReasoner.Kernels.dll tools/net10.0/any/libnrcudaemu.so

nuspec() { unzip -p "$feed/$1" "$2.nuspec"; }
engine_spec=$(nuspec "$engine" NativeReasoner)
for dep in System.Numerics.Tensors ILGPU ILGPU.Algorithms Microsoft.ML.Tokenizers ScottPlot; do
  grep -q "id=\"$dep\"" <<<"$engine_spec" || fail "$engine does not depend on $dep"
done
if grep -E 'id="NativeReasoner\.(Kernels|Tensor|Model|RL)"' <<<"$engine_spec"; then
  fail "$engine depends on engine projects it carries itself"
fi
grep -q '<license type="expression">' <<<"$engine_spec" || fail "$engine has no licence expression"
ai_spec=$(nuspec "NativeReasoner.Extensions.AI.$version.nupkg" NativeReasoner.Extensions.AI)
grep -q "id=\"NativeReasoner\" version=\"$version\"" <<<"$ai_spec" \
  || fail "NativeReasoner.Extensions.AI does not depend on NativeReasoner $version"
grep -q 'id="Microsoft.Extensions.AI.Abstractions"' <<<"$ai_spec" \
  || fail "NativeReasoner.Extensions.AI does not depend on Microsoft.Extensions.AI.Abstractions"
server_spec=$(nuspec "NativeReasoner.Server.$version.nupkg" NativeReasoner.Server)
grep -q "id=\"NativeReasoner.Extensions.AI\" version=\"$version\"" <<<"$server_spec" \
  || fail "NativeReasoner.Server does not depend on NativeReasoner.Extensions.AI $version"
grep -q 'frameworkReference name="Microsoft.AspNetCore.App"' <<<"$server_spec" \
  || fail "NativeReasoner.Server does not name the ASP.NET Core shared framework"
# A package of ours may only depend on packages of ours that the feed has (a project reference to an engine
# project other than NativeReasoner.RL would name a package that does not exist).
for pkg in "$feed"/*.nupkg; do
  id=$(basename "$pkg" ".$version.nupkg")
  for dep in $(nuspec "$(basename "$pkg")" "$id" | sed -n 's/.*dependency id="\(NativeReasoner[^"]*\)".*/\1/p'); do
    [ -f "$feed/$dep.$version.nupkg" ] || fail "$id depends on $dep, which is not one of the packages made"
  done
done
# The packed emulator must not need this CPU's optional instructions (FMA is one the local build uses).
unzip -p "$feed/$engine" runtimes/linux-x64/native/libnrcudaemu.so > "$work/libnrcudaemu.so"
objdump -d "$work/libnrcudaemu.so" > "$work/libnrcudaemu.asm"
if grep -qE '\svfn?m(add|sub)[0-9]+[sp]s\s' "$work/libnrcudaemu.asm"; then
  fail "the packed CUDA emulator uses FMA instructions: it was not built portable"
fi

# Source link maps the pdbs to the commit on the git host; with no GitHub remote it has nothing to point at.
origin=$(git remote get-url origin 2>/dev/null || true)
if [[ "$origin" == *github.com* ]]; then
  unzip -p "$feed/NativeReasoner.$version.snupkg" lib/net10.0/NativeReasoner.Tensor.pdb > "$work/tensor.pdb"
  grep -aq 'https://raw.githubusercontent.com/' "$work/tensor.pdb" || fail "the engine's pdbs have no source link"
  echo "source link: the pdbs point at raw.githubusercontent.com"
else
  echo "source link: not checked (no GitHub remote named origin: '${origin}')"
fi

echo "== a console app outside the repository, packages from the feed only"
export NUGET_PACKAGES=$work/nuget-packages
app=$work/consumer
mkdir -p "$app"
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
cp "$work/nuget.config" "$app/nuget.config"
di_version=$(sed -n 's/.*Include="Microsoft.Extensions.DependencyInjection" Version="\([^"]*\)".*/\1/p' \
  Directory.Packages.props)
(
  cd "$app"
  timeout 300 dotnet new console --name Consumer --output . --no-restore >/dev/null
  cp "$repo/scripts/pack-check/Program.cs" Program.cs
  timeout 600 dotnet add package NativeReasoner.Extensions.AI --version "$version"
  timeout 600 dotnet add package Microsoft.Extensions.DependencyInjection --version "$di_version"
  grep -q "nativereasoner/$version" obj/project.assets.json || fail "the app did not resolve NativeReasoner $version"
  timeout 600 dotnet build -c Release --nologo -v q
  echo "-- run"
  timeout 600 dotnet bin/Release/net10.0/Consumer.dll "$work/model"
)
case "$NUGET_PACKAGES" in "$work"/*) ;; *) fail "NUGET_PACKAGES escaped the temp folder";; esac
ls "$NUGET_PACKAGES/nativereasoner/$version/runtimes/linux-x64/native/libnrcudaemu.so" >/dev/null \
  || fail "the engine did not come from the fresh package folder"

echo "== the nr tool from the feed"
timeout 600 dotnet tool install NativeReasoner.Cli --version "$version" --tool-path "$work/tools" \
  --configfile "$work/nuget.config"
info=$(timeout 120 "$work/tools/nr" info)
echo "$info"
grep -qE "^nr +$version$" <<<"$info" || fail "nr info does not report version $version"
grep -qE "^cuda emulator +.*libnrcudaemu\.so" <<<"$info" || fail "nr info from the tool does not find its CUDA emulator"
echo "pack-check: packages, consumer app and tool all work"
