#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is
# missing, then runs the formatting and lint gates and every test. `.ci/run`
# calls exactly this script, so a fresh clone and CI do the same thing.
#
#   scripts/test.sh
#
# What it installs, only when missing (nothing is touched when all is there):
# - apt packages: `redis-server` (the Redis budget store tests start and stop
#   their own instances on free loopback ports), `graphviz` (a test renders
#   `routec graph --format dot`), `curl` (the docs' commands use it),
#   `neovim` (tests/lsp_neovim.rs drives `routec lsp` from its LSP client), and
#   `python3-venv` when Python cannot make a venv;
# - `.venv/` in the checkout with the official `openai` and `anthropic` Python SDKs, the real
#   client of the gateway's SDK tests, which find it through `ROUTEC_PYTHON`.
#
# Runs as root without sudo, or as a user with sudo; `apt-get update` only
# runs when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "==> $*" >&2; }

# --- system packages ---------------------------------------------------------
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v nvim >/dev/null 2>&1 || missing+=(neovim)
# node and npm build the VS Code extension; Debian's `npm` brings `nodejs`.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "error: missing ${missing[*]}; install them (as root: apt-get install ${missing[*]}) or run with sudo available" >&2
      exit 1
    fi
    SUDO=(sudo)
  fi
  step "installing ${missing[*]} (apt)"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- the openai Python SDK, in .venv -----------------------------------------
if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import openai' >/dev/null 2>&1; then
  step "installing the openai Python SDK into .venv"
  .venv/bin/pip install -q --disable-pip-version-check openai
fi
if ! .venv/bin/python -c 'import anthropic' >/dev/null 2>&1; then
  step "installing the anthropic Python SDK into .venv"
  .venv/bin/pip install -q --disable-pip-version-check anthropic
fi
ROUTEC_PYTHON="$PWD/.venv/bin/python"
export ROUTEC_PYTHON

# --- the gates and the tests -------------------------------------------------
step "cargo fmt --all -- --check"
cargo fmt --all -- --check
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test --workspace"
cargo test --workspace

# --- the VS Code extension ---------------------------------------------------
# Its grammar's snapshot and scope tests on the example policies, and the
# `.vsix` itself, built the way a user builds it (npm ci from the lock file).
# Needs node 20 and npm, and the npm registry.
if command -v npm >/dev/null 2>&1; then
  step "editors/vscode/build-vsix.sh"
  editors/vscode/build-vsix.sh
else
  echo "error: npm is missing after installing it; the VS Code extension needs node and npm" >&2
  exit 1
fi
