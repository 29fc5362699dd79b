#!/usr/bin/env bash
# Configures (first time, or when the Python changed) and builds ls-train.
#   tools/build.sh [BUILD_DIR]        default BUILD_DIR: build/
# Environment: LS_BUILD_TYPE (Release), LS_SANITIZE=1 (ASan+UBSan), LS_JOBS, LS_CMAKE_ARGS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir="${1:-$LS_ROOT/build}"
# ccache: paths relative to the checkout, so another clone of the repository (CI's) hits the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$LS_ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
# Files compiled with the torch PCH are cacheable only with these (see ccache docs on PCH).
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
py=$(ls_resolve_python)
[ -n "$py" ] || ls_die "no Python with torch $LS_TORCH_VERSION found: run tools/setup.sh first"
torch_prefix=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
sanitize=OFF; [ "${LS_SANITIZE:-0}" = "1" ] && sanitize=ON

cache="$build_dir/CMakeCache.txt"
if [ ! -f "$cache" ] || ! grep -q "^LS_PYTHON:FILEPATH=$py\$" "$cache" || ! grep -q "^LS_SANITIZE:BOOL=$sanitize\$" "$cache"; then
  ls_log "configuring $build_dir"
  cmake -S "$LS_ROOT" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="${LS_BUILD_TYPE:-Release}" \
    -DCMAKE_PREFIX_PATH="$torch_prefix" \
    -DLS_PYTHON="$py" -DLS_SANITIZE="$sanitize" \
    ${LS_CMAKE_ARGS:-} >"$build_dir.configure.log" 2>&1 || { cat "$build_dir.configure.log" >&2; ls_die "configure failed (log: $build_dir.configure.log)"; }
  grep -E '^-- ls-train:' "$build_dir.configure.log" >&2 || true
fi
ls_log "building in $build_dir"
cmake --build "$build_dir" -j "${LS_JOBS:-$(nproc)}"
