"""Start `heedful serve` as a subprocess on a free port and talk to it with urllib (no extra dependencies)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ._helpers import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def proxy_exists() -> bool:
    """The console script's target, app.cli:main, exists (as a module or a package)."""
    return (REPO / "app" / "cli.py").is_file() or (REPO / "app" / "cli" / "__init__.py").is_file()


@contextlib.contextmanager
def serve(cmd: list[str], env: dict[str, str], cwd: Path, port: int, log: Path, ready_timeout: float = 90,
          preexec=None, user: int | None = None, group: int | None = None) -> Iterator[str]:
    """Run the server until /readyz answers 200; yield its base URL; stop it. Fails with the server log."""
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                user=user, group=group, extra_groups=[] if user is not None else None)
    try:
        deadline = time.monotonic() + ready_timeout
        status = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"heedful serve exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
            try:
                status, _ = http("GET", f"{base}/readyz", timeout=2)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.25)
        else:
            raise AssertionError(f"/readyz not 200 after {ready_timeout}s (last {status}):\n{log.read_text(errors='replace')[-4000:]}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing HEEDFUL_* leaks in from the caller."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")}
    return {**keep, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", **extra}
