"""The fault suite's parts: one fault-injecting upstream over a real socket, and real proxies (real model, real
policies) in front of it, one with a short deadline and a small byte cap, one patient (to see cancellation, not the
deadline, end the upstream work)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.fault_upstream import Connection, FaultUpstream
from app.local_server import LocalServer
from app.main import create_app
from tests.conftest import POLICIES, wait_for

DEADLINE_S = 1.5
CAP_BYTES = 256 * 1024
HUGE_BYTES = 48 * 1024 * 1024


@pytest.fixture(scope="session")
def faulty() -> Iterator[FaultUpstream]:
    with FaultUpstream(drip_interval_s=1.0, huge_bytes=HUGE_BYTES) as server:
        yield server


def _proxy(upstream: FaultUpstream, policies: Path, **overrides: object) -> LocalServer:
    policies.mkdir(exist_ok=True)
    shutil.copy(POLICIES / "default.yaml", policies / "default.yaml")
    settings = Settings(**({"upstream": f"{upstream.url}/v1", "policies": policies, "policy_poll_s": 5.0} | overrides))
    return LocalServer(create_app(settings)).__enter__()


@pytest.fixture(scope="module")
def fault_proxy(faulty: FaultUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = _proxy(faulty, tmp_path_factory.mktemp("policies"), upstream_timeout_s=DEADLINE_S,
                    upstream_max_response_bytes=CAP_BYTES)
    yield server
    server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def patient_proxy(faulty: FaultUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = _proxy(faulty, tmp_path_factory.mktemp("policies"), upstream_timeout_s=60.0)
    yield server
    server.__exit__(None, None, None)


def last_connection(upstream: FaultUpstream, fault: str, count_before: int) -> Connection:
    assert wait_for(lambda: len(upstream.for_fault(fault)) > count_before, 5), f"the upstream never saw fault:{fault}"
    return upstream.for_fault(fault)[-1]
