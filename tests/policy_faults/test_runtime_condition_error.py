"""A condition that loads (every probe value evaluates) but fails at run time on a real request, here a division by zero
on a conversation's second user turn: the policy's failure_mode decides, it is recorded (header, audit, metric), and it is
never a 500, for JSON, for a stream and for /v1/guard/score (issue 10, item 3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from app.scripted_upstream import FALLBACK
from tests.conftest import client_for

POLICY = """apiVersion: heedful/v1
kind: Policy
metadata: {{name: default, version: "1"}}
spec:
  default: true
  failure_mode: {mode}
  failure_reply: "Sorry, not now."
  rules:
    - name: divides-by-zero-on-two-turns
      when: "10 / (request.turns - 2) > 1"
      action: replace
      text: "REPLACED"
"""

TWO_TURNS = [{"role": "user", "content": "Hello there."}, {"role": "assistant", "content": "Hi, how can I help?"},
             {"role": "user", "content": "Tell me something about your day."}]
THREE_TURNS = [{"role": "user", "content": "One."}, {"role": "assistant", "content": "Two."}, *TWO_TURNS]


def _failures(proxy) -> float:  # type: ignore[no-untyped-def]
    for line in httpx.get(f"{proxy.url}/metrics").text.splitlines():
        if line.startswith('heedful_guard_failures_total{kind="policy_error"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize(("mode", "expected", "outcome"), [("open", FALLBACK, "failed_open"),
                                                            ("closed", "Sorry, not now.", "failed_closed")])
def test_runtime_condition_error_follows_the_failure_mode(make_proxy, policy_dir: Path, scripted, mode: str,
                                                          expected: str, outcome: str) -> None:
    (policy_dir / "default.yaml").write_text(POLICY.format(mode=mode))
    proxy = make_proxy()
    client = client_for(proxy)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=TWO_TURNS)  # type: ignore[arg-type]
    assert raw.http_response.status_code == 200
    assert raw.parse().choices[0].message.content == expected
    assert raw.headers["x-heedful-outcome"] == outcome and raw.headers["x-heedful-failure"] == "policy_error"
    audit = asyncio.run(proxy._server.config.app.state.services.store.recent_audit(1))[0]
    assert audit["outcome"] == outcome and audit["failure"].startswith("policy_error")
    assert _failures(proxy) == 1

    stream = client.chat.completions.create(model="m", messages=TWO_TURNS, stream=True)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected
    assert _failures(proxy) == 2

    scored = httpx.post(f"{proxy.url}/v1/guard/score", json={"messages": TWO_TURNS, "reply": FALLBACK}, timeout=30)
    assert scored.status_code == 200 and scored.json()["failure"] == "policy_error"
    assert scored.json()["action"] == ("allow" if mode == "open" else "replace")

    # The same rule on a conversation it can evaluate acts as written: the failure was the condition's, not the proxy's.
    replaced = client.chat.completions.create(model="m", messages=THREE_TURNS)  # type: ignore[arg-type]
    assert replaced.choices[0].message.content == "REPLACED"
