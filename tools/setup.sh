#!/usr/bin/env bash
# Installs everything ls-train needs on a fresh Debian 12 (or Ubuntu 24.04) machine; idempotent:
# a second run checks and returns in seconds. On a machine that already has the C++ libraries and
# a python3 with torch 2.11.0 + transformers + peft (the GPU machines), it installs nothing.
#
#   apt:  build tools, OpenMPI, yaml-cpp, sentencepiece, PCRE2 + utf8proc (tokenizer.json),
#         Boost.Beast (ls_serve, header-only), fmt,
#         nlohmann-json, GoogleTest, CLI11, ccache
#   pip:  a venv at $LS_VENV (default ~/.local/share/ls-train/venv) with tools/requirements.txt;
#         torch 2.11.0 from PyPI is the CUDA 13.0 build whose libtorch we compile against.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# --- C++ toolchain and libraries -------------------------------------------------------------
# Checked by what the build needs (headers, programs), so other distributions' package names
# for the same things count as installed.
missing=()
need_file() { [ -e "$1" ] || missing+=("$2"); }
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_cmd g++ g++
need_cmd cmake cmake
need_cmd ninja ninja-build
need_cmd pkg-config pkg-config
need_cmd mpicxx libopenmpi-dev
need_cmd mpirun openmpi-bin
need_file /usr/include/yaml-cpp/yaml.h libyaml-cpp-dev
need_file /usr/include/sentencepiece_processor.h libsentencepiece-dev
need_file /usr/include/pcre2.h libpcre2-dev        # tokenizer.json: pre-tokenizer regexes
need_file /usr/include/utf8proc.h libutf8proc-dev  # tokenizer.json: NFC
need_file /usr/include/boost/beast.hpp libboost-dev  # ls_serve (optional in the build)
need_file /usr/include/fmt/format.h libfmt-dev
need_file /usr/include/nlohmann/json.hpp nlohmann-json3-dev
need_file /usr/include/gtest/gtest.h libgtest-dev
need_file /usr/include/CLI/CLI.hpp libcli11-dev
need_cmd ccache ccache
need_cmd clang-format-14 clang-format-14  # tools/format.sh --check: the style is pinned to 14
need_cmd git git
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || ls_die "missing ${missing[*]} and no apt-get to install them"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  ls_log "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python reference stack and libtorch ---------------------------------------------------------
req="$LS_ROOT/tools/requirements.txt"
stamp="$LS_VENV/.ls-requirements.sha256"
want_hash=$(sha256sum "$req" | cut -d' ' -f1)
if [ -n "${LS_PYTHON:-}" ]; then
  ls_python_ok "$LS_PYTHON" || ls_die "LS_PYTHON=$LS_PYTHON lacks torch $LS_TORCH_VERSION / transformers / peft"
  ls_log "using LS_PYTHON=$LS_PYTHON"
elif [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_hash" ] && [ -x "$LS_VENV/bin/python" ]; then
  :  # venv up to date
elif [ ! -d "$LS_VENV" ] && command -v python3 >/dev/null && ls_python_ok "$(command -v python3)"; then
  ls_log "reusing $(command -v python3) (torch $LS_TORCH_VERSION, transformers, peft already there)"
else
  command -v python3 >/dev/null || ls_die "python3 (3.10 or newer) is required"
  if [ ! -x "$LS_VENV/bin/python" ]; then
    python3 -m venv "$LS_VENV" 2>/dev/null || {
      ls_log "python3-venv missing; installing it"
      SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$LS_VENV"
    }
  fi
  ls_log "installing the Python reference stack into $LS_VENV (torch $LS_TORCH_VERSION is ~3 GB with its CUDA libraries)"
  "$LS_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want_hash" > "$stamp"
fi

py=$(ls_resolve_python)
[ -n "$py" ] || ls_die "no Python with torch $LS_TORCH_VERSION after setup"
ls_log "setup complete: python $py"
