"""The one-turn pacification scenario the action and repair-safety tests send, and the audit record it leaves."""

from __future__ import annotations

import asyncio
from typing import Any

from app.scripted_upstream import SCENARIOS
from tests.conftest import client_for

PACIFYING = next(s for s in SCENARIOS if s.name == "pacification")


def ask(proxy):  # type: ignore[no-untyped-def]
    return client_for(proxy).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": PACIFYING.user}])


def last_audit(proxy) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    record: dict[str, Any] = asyncio.run(proxy._server.config.app.state.services.store.recent_audit(1))[0]
    return record
