"""How the proxy authenticates upstream, and that its credentials never reach a log line or the process arguments."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.fault_upstream import FaultUpstream
from app.local_server import LocalServer
from tests.conftest import ProxyFactory, client_for
from tests.faults.conftest import last_connection
from tests.faults.test_upstream_faults import USER


def test_the_clients_x_api_key_is_forwarded(fault_proxy: LocalServer, faulty: FaultUpstream) -> None:
    before = len(faulty.for_fault("none"))
    client = client_for(fault_proxy, api_key="sk-client")
    client.chat.completions.create(model="m", messages=USER, extra_headers={"x-api-key": "xk-client-123"})
    headers = last_connection(faulty, "none", before).headers
    assert headers["x-api-key"] == "xk-client-123"
    assert headers["authorization"] == "Bearer sk-client"


def test_a_deployment_key_can_go_upstream_as_x_api_key(make_proxy: ProxyFactory, faulty: FaultUpstream) -> None:
    proxy = make_proxy(upstream=f"{faulty.url}/v1", upstream_api_key="xk-deployment", upstream_api_key_header="x-api-key")
    before = len(faulty.for_fault("none"))
    client_for(proxy, api_key="sk-client").chat.completions.create(
        model="m", messages=USER, extra_headers={"x-api-key": "xk-client"})
    headers = last_connection(faulty, "none", before).headers
    assert headers["x-api-key"] == "xk-deployment"
    assert "authorization" not in headers  # the deployment key replaces the client's credentials


def test_credentials_in_the_upstream_url_are_used_but_never_logged(make_proxy: ProxyFactory, faulty: FaultUpstream,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    proxy = make_proxy(upstream=f"http://alice:s3cret-pass@127.0.0.1:{faulty.port}/v1")
    before = len(faulty.for_fault("none"))
    client_for(proxy).chat.completions.create(model="m", messages=USER)
    sent = last_connection(faulty, "none", before).headers["authorization"]
    assert sent == "Basic " + base64.b64encode(b"alice:s3cret-pass").decode()
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx" and "HTTP Request" in r.getMessage()]
    assert requests, "httpx logged no request line: the check below would prove nothing"
    assert "s3cret-pass" not in caplog.text
    assert "alice" not in caplog.text


def test_the_upstream_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "upstream-key"
    key_file.write_text("sk-from-file\n")
    assert Settings(upstream_api_key_file=key_file).upstream_api_key.get_secret_value() == "sk-from-file"
    with pytest.raises(ValidationError, match="not both"):
        Settings(upstream_api_key_file=key_file, upstream_api_key="sk-other")
    with pytest.raises(ValidationError, match="No such file"):
        Settings(upstream_api_key_file=tmp_path / "missing")


def test_the_key_argument_warns_that_it_is_visible(tmp_path: Path) -> None:
    """--upstream-api-key shows in `ps`; it is kept for old deployments, with a warning that names the way out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEEDFUL_")}
    result = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--upstream-api-key", "sk-visible",
                             "--policies", str(tmp_path / "none"), "--port", "0"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert "--upstream-api-key is deprecated" in result.stderr
    assert "--upstream-api-key-file" in result.stderr
    assert "sk-visible" not in result.stderr
