"""Shared fixtures: a real Redis server, the scripted upstream over a socket, and proxies built on the real model."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from app.config import Settings
from app.local_server import LocalServer, free_port
from app.main import create_app
from app.scripted_upstream import ScriptedUpstream

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "policies"


class RedisServer:
    """A redis-server process on a free port; stop() and start() simulate an outage, kill() a crash, freeze() and thaw()
    a Redis that stops answering (SIGSTOP/SIGCONT). No persistence unless `data_dir` is given: then an append-only file
    there, fsynced before each reply, keeps every acknowledged write across kill() and start()."""

    def __init__(self, data_dir: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; .ci/run installs Debian's redis-server")
        self.binary, self.port, self.data_dir = binary, free_port(), data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # appendfsync always: a write is on disk before Redis acknowledges it (everysec may lose the last second).
        persistence = (["--appendonly", "no"] if self.data_dir is None
                       else ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)])
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         *persistence], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def upstream() -> Iterator[tuple[ScriptedUpstream, LocalServer]]:
    scripted = ScriptedUpstream()
    with LocalServer(scripted.app) as server:
        yield scripted, server


@pytest.fixture
def scripted(upstream: tuple[ScriptedUpstream, LocalServer]) -> Iterator[ScriptedUpstream]:
    scripted, _ = upstream
    scripted.requests.clear()
    scripted.overrides.clear()
    scripted.choices.clear()
    yield scripted
    scripted.overrides.clear()
    scripted.choices.clear()


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    target.mkdir()
    shutil.copy(POLICIES / "default.yaml", target / "default.yaml")
    return target


ProxyFactory = Callable[..., LocalServer]


# Tests that assert what reached Redis give each operation this long: the shipped 50 ms bound is for production, where a
# slow Redis must not hold a reply, and a loaded CI machine can pass it now and then (a write then goes to the fallback).
SLOW_MACHINE_REDIS_TIMEOUT_S = 2.0


@pytest.fixture
def make_proxy(upstream: tuple[ScriptedUpstream, LocalServer], policy_dir: Path, tmp_path: Path) -> Iterator[ProxyFactory]:
    """Start a real proxy (real model, real policies) against the scripted upstream; extra settings by keyword. Each
    test has its own audit spool, so no record spooled by one test reaches another's Redis."""
    started: list[LocalServer] = []

    def factory(**overrides: object) -> LocalServer:
        _, up = upstream
        defaults = {"upstream": f"{up.url}/v1", "policies": policy_dir, "policy_poll_s": 0.2,
                    "audit_spool_dir": tmp_path / "audit-spool"}
        settings = Settings(**(defaults | overrides))
        server = LocalServer(create_app(settings)).__enter__()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture
def proxy(make_proxy: ProxyFactory) -> LocalServer:
    return make_proxy()


_OPEN_CLIENTS: list[openai.OpenAI] = []


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes; its last answer (for what a background task does)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def client_for(server: LocalServer, api_key: str = "sk-test-client-key") -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=api_key, max_retries=0, timeout=30)
    _OPEN_CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Clients made by a test close with it: an unclosed connection pool surfaces later as a ResourceWarning."""
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()
