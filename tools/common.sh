# Shared by the tools/*.sh scripts (sourced, not run): where things live and which Python to use.
#
#   LS_VENV     the virtual environment tools/setup.sh creates (default: ~/.local/share/ls-train/venv)
#   LS_PYTHON   the Python with torch/transformers/peft; set it to use your own interpreter
#   LS_JOBS     parallel build jobs (default: number of cores)

LS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LS_VENV="${LS_VENV:-$HOME/.local/share/ls-train/venv}"
LS_TORCH_VERSION="2.11.0"

ls_log() { printf '[ls-train] %s\n' "$*" >&2; }
ls_die() { printf '[ls-train] error: %s\n' "$*" >&2; exit 1; }

# A Python whose torch is the pinned version and that has the reference stack.
ls_python_ok() {
  "$1" - "$LS_TORCH_VERSION" >/dev/null 2>&1 <<'PY'
import sys, importlib.metadata as md
want = sys.argv[1]
assert md.version("torch").split("+")[0] == want
for name in ("transformers", "peft", "safetensors", "numpy"):
    md.version(name)
PY
}

# Which Python the project uses, in order: $LS_PYTHON, the project venv, a system python3 that
# already carries the pinned torch (the GPU machines). Prints nothing if none is set up yet.
ls_resolve_python() {
  if [ -n "${LS_PYTHON:-}" ]; then echo "$LS_PYTHON"; return; fi
  if [ -x "$LS_VENV/bin/python" ] && ls_python_ok "$LS_VENV/bin/python"; then echo "$LS_VENV/bin/python"; return; fi
  if command -v python3 >/dev/null && ls_python_ok "$(command -v python3)"; then command -v python3; return; fi
}

# Configures BUILD_DIR (the first time, or again when the Python or the sanitizer setting changed)
# and builds the named targets, or everything when none is named: tools/build.sh builds it all,
# tools/quickstart.sh only the programs it runs.
#   ls_build BUILD_DIR [TARGET...]
# Environment: LS_BUILD_TYPE (Release), LS_SANITIZE=1 (ASan+UBSan), LS_JOBS, LS_CMAKE_ARGS.
ls_build() {
  local build_dir=$1; shift
  # ccache: paths relative to the checkout, so another clone of the repository (CI's) hits the cache.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$LS_ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  # Files compiled with the torch PCH are cacheable only with these (see ccache docs on PCH).
  export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
  local py torch_prefix sanitize=OFF cache="$build_dir/CMakeCache.txt"
  py=$(ls_resolve_python)
  [ -n "$py" ] || ls_die "no Python with torch $LS_TORCH_VERSION found: run tools/setup.sh first"
  torch_prefix=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  [ "${LS_SANITIZE:-0}" = "1" ] && sanitize=ON
  # LS_REQUIRE_OPTIONAL=1 (tools/test.sh): ls_serve and tokenizer.json support must build (ON);
  # otherwise a build directory keeps what it was configured with (AUTO when new).
  local required=() optional_ok=1
  if [ "${LS_REQUIRE_OPTIONAL:-0}" = "1" ]; then
    required=(-DLS_WITH_SERVE=ON -DLS_WITH_HF_TOKENIZER=ON)
    { grep -q "^LS_WITH_SERVE:STRING=ON\$" "$cache" && grep -q "^LS_WITH_HF_TOKENIZER:STRING=ON\$" "$cache"; } 2>/dev/null ||
      optional_ok=0
  fi
  if [ ! -f "$cache" ] || ! grep -q "^LS_PYTHON:FILEPATH=$py\$" "$cache" || ! grep -q "^LS_SANITIZE:BOOL=$sanitize\$" "$cache" ||
     [ "$optional_ok" = 0 ]; then
    ls_log "configuring $build_dir"
    # shellcheck disable=SC2086
    cmake -S "$LS_ROOT" -B "$build_dir" -G Ninja \
      -DCMAKE_BUILD_TYPE="${LS_BUILD_TYPE:-Release}" \
      -DCMAKE_PREFIX_PATH="$torch_prefix" \
      -DLS_PYTHON="$py" -DLS_SANITIZE="$sanitize" \
      "${required[@]}" \
      ${LS_CMAKE_ARGS:-} >"$build_dir.configure.log" 2>&1 || { cat "$build_dir.configure.log" >&2; ls_die "configure failed (log: $build_dir.configure.log)"; }
    grep -E '^-- ls-train:' "$build_dir.configure.log" >&2 || true
  fi
  ls_log "building ${*:-everything} in $build_dir"
  cmake --build "$build_dir" -j "${LS_JOBS:-$(nproc)}" ${1:+--target "$@"}
}
