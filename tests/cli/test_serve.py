"""heedful serve refuses to start on a broken policy, naming the file and the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import POLICIES


def test_refused_policy_stops_the_server_with_the_error(tmp_path: Path) -> None:
    broken = tmp_path / "default.yaml"
    broken.write_text((POLICIES / "default.yaml").read_text().replace('when: "reply.sycophancy_epistemic >= 0.26',
                                                                      'when: "reply.sycophancy_epistemc >= 0.5'))
    line = next(i for i, text in enumerate(broken.read_text().splitlines(), 1) if "sycophancy_epistemc" in text)
    result = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--policies", str(tmp_path), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{broken}:{line}: policy_cel_error: spec.rules[2].when: unknown field reply.sycophancy_epistemc" in result.stderr


def test_logs_never_contain_credentials() -> None:
    import logging

    from app.logs import JsonFormatter

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "calling upstream with Authorization: Bearer sk-live-abc123xyz",
                               None, None)
    record.headers = {"authorization": "Bearer sk-live-abc123xyz", "api_key": "sk-proj-999999"}
    text = JsonFormatter().format(record)
    assert "sk-live-abc123xyz" not in text and "sk-proj-999999" not in text
    assert "[redacted]" in text


def test_serve_outside_the_repository_uses_the_packaged_policies(tmp_path: Path) -> None:
    """Started from any directory without --policies, the installed package brings its default policies."""
    import os
    import time

    import httpx

    from app.local_server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEEDFUL_")}
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--upstream",
                                    "http://127.0.0.1:9/v1"], cwd=tmp_path, env=env | {"PYTHONPATH": str(POLICIES.parent)},
                                   stdout=subprocess.DEVNULL, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline and ready is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).json()
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready is not None and ready["status"] == "ready", log.read_text()
        assert "default" in ready["policies"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    started = log.read_text()
    assert f"heedful: listening on http://127.0.0.1:{port}/v1" in started
    assert "heedful: upstream http://127.0.0.1:9/v1" in started and "heedful: policies " in started
    assert "color_message" not in started and "\x1b[" not in started
