"""One proxy for the whole fuzz module (real model, the shipped policies, the scripted upstream over a socket): Hypothesis
runs many examples against it, and a fresh proxy per example would measure start-up, not input handling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from app.config import Settings
from app.local_server import LocalServer
from app.main import create_app
from app.scripted_upstream import ScriptedUpstream
from tests.conftest import POLICIES

# CI: a couple of minutes for the whole folder. The long run is bench/fuzz.py (README, "Fuzzing").
settings.register_profile("fuzz-ci", max_examples=80, deadline=None, database=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture, HealthCheck.large_base_example])


@pytest.fixture(scope="module")
def fuzz_proxy(upstream: tuple[ScriptedUpstream, LocalServer]) -> Iterator[LocalServer]:
    _, up = upstream
    settings_ = Settings(upstream=f"{up.url}/v1", policies=POLICIES, policy_poll_s=3600)
    with LocalServer(create_app(settings_)) as server:
        yield server
