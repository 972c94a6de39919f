#!/usr/bin/env bash
# Set up everything on a fresh machine: Redis (Debian), a virtual environment with Heedful and its test tools, and the
# deployment-check tools; with HEEDFUL_WITH_LLM=1 also the real local model (scripts/local-llm.sh). Idempotent.
# Training needs more: `.venv/bin/pip install -e ".[train]"` (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "setup: $*" >&2; }

# Debian packages the tests need: Redis, PostgreSQL (the console's tests start a throwaway cluster) and Chromium (the
# console's browser test drives it with Playwright; Playwright's own browser download is not used).
SUDO=""; [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if (( ${#missing[@]} )); then
  log "installing ${missing[*]} (Debian)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
log "installing heedful with its test extras"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
bash deploy/install-tools.sh
# The real local model (tests/e2e, bench/repair_bench.py, `heedful demo`): optional for a developer, required in CI.
if [[ "${HEEDFUL_WITH_LLM:-0}" == 1 || "${HEEDFUL_REQUIRE_LLM:-0}" == 1 ]]; then
  bash scripts/local-llm.sh install
fi
log "ready: .venv/bin/heedful demo | scripts/test.sh"
