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
