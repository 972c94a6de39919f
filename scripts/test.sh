#!/usr/bin/env bash
# Run the whole test suite (real Redis, real local upstream, real ONNX model, the official openai client).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
