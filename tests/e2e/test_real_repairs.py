"""Each repair action through the real proxy and the real local model (temperature 0, a fixed seed), driven by the
official openai client. The model's words are not asserted, only the properties the guard promises: the reply the client
got is the one the decision and the audit record name, the headers say what the audit says, and a repaired reply
neither echoes the instruction nor scores worse than its draft on the repaired label."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from app.corrective import instruction_for
from app.leakage import instruction_leak
from app.local_llm import MODEL_NAME, LocalLLM
from app.local_server import LocalServer
from tests.conftest import client_for

USER = "My best friend hasn't texted me back in a week and I'm worried she's mad at me."
FIXED = "I'd like to hear more before I answer. What has the week been like for you?"
SAMPLING: dict[str, Any] = {"temperature": 0, "seed": 7, "max_tokens": 48}

POLICY = """apiVersion: heedful/v1
kind: Policy
metadata: {{name: e2e, version: "1"}}
spec:
  default: true
  audit: {{include_texts: true}}
  streaming: {{sentences: 2}}
  limits: {{max_attempts: {attempts}, time_budget_ms: 240000, scoring_timeout_ms: 60000, on_exhausted: {exhausted},
           fixed_reply: "{fixed}"}}
  rules:
    - name: forced-repair
      when: "{when}"
      action: {action}
      label: pacification
      candidates: {candidates}
"""


# The generous time budgets keep a busy CI machine from cutting a repair short: these tests are about what a repair
# returns, not how fast (bench/ measures speed).
def real_proxy(make_proxy, policy_dir: Path, llm: LocalLLM, *, action: str = "regenerate", when: str = "attempt == 0",  # type: ignore[no-untyped-def]
               attempts: int = 2, exhausted: str = "best", candidates: int = 1) -> LocalServer:
    """A proxy whose one rule forces the repair under test on the first draft (the model's words decide nothing)."""
    (policy_dir / "default.yaml").write_text(POLICY.format(action=action, when=when, attempts=attempts, exhausted=exhausted,
                                                           fixed=FIXED, candidates=candidates))
    return make_proxy(upstream=llm.url, upstream_timeout_s=240)  # type: ignore[no-any-return]


def audit_of(proxy: LocalServer, request_id: str) -> dict[str, Any]:
    """The request's audit record (a stream's is written just after its last chunk, so it may take a moment)."""
    store = proxy._server.config.app.state.services.store  # type: ignore[attr-defined]
    for _ in range(100):
        found = next((r for r in asyncio.run(store.recent_audit(20)) if r["request_id"] == request_id), None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no audit record for {request_id}")


def assert_consistent(headers: Any, text: str, record: dict[str, Any]) -> None:
    """Headers, audit record and the reply the client got tell one story."""
    assert record["returned"] == text
    for field in ("rule", "action", "outcome", "attempts"):
        assert headers[f"x-heedful-{field}"] == str(record[field]), field
    assert record["rule"] == "forced-repair"
    assert record["outcome"] in ("repaired", "exhausted_best"), record["outcome"]
    assert record["attempts"] >= 1
    assert record["changed"] == (text != record["reply"])
    if record["outcome"] == "repaired":
        assert instruction_leak(text, instruction_for("pacification", {}, None), USER) is None
        assert record["final_scores"]["pacification"] <= record["scores"]["pacification"]
    else:  # every candidate was rejected or no better: the best acceptable draft is the model's own first one
        assert text == record["reply"]
    rejected = ",".join(f"{k}={v}" for k, v in sorted((record.get("rejected") or {}).items()))
    assert headers.get("x-heedful-rejected", "") == rejected


@pytest.mark.parametrize("action", ["regenerate", "rewrite"])
def test_a_forced_repair_returns_what_the_decision_and_audit_say(make_proxy, policy_dir, local_llm, action: str) -> None:
    proxy = real_proxy(make_proxy, policy_dir, local_llm, action=action)
    raw = client_for(proxy).with_options(timeout=300).chat.completions.with_raw_response.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": USER}], **SAMPLING)
    text = raw.parse().choices[0].message.content or ""
    assert raw.headers["x-heedful-action"] == action
    assert_consistent(raw.headers, text, audit_of(proxy, raw.headers["x-heedful-request-id"]))


def test_candidates_are_all_scored_even_from_an_upstream_that_ignores_n(make_proxy, policy_dir, local_llm) -> None:
    proxy = real_proxy(make_proxy, policy_dir, local_llm, attempts=1, candidates=3)
    raw = client_for(proxy).with_options(timeout=300).chat.completions.with_raw_response.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": USER}], **(SAMPLING | {"temperature": 0.8}))
    text = raw.parse().choices[0].message.content or ""
    record = audit_of(proxy, raw.headers["x-heedful-request-id"])
    assert record["candidates"] == 3
    assert_consistent(raw.headers, text, record)


def test_a_streamed_repair_is_the_text_the_audit_records(make_proxy, policy_dir, local_llm) -> None:
    proxy = real_proxy(make_proxy, policy_dir, local_llm)
    with client_for(proxy).with_options(timeout=300).chat.completions.with_streaming_response.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": USER}], stream=True, **SAMPLING) as response:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
        headers = response.headers
    assert headers["x-heedful-holdback"] == "2 sentences"
    assert_consistent(headers, text, audit_of(proxy, headers["x-heedful-request-id"]))


def test_repairs_that_never_pass_fall_back_to_the_fixed_reply(make_proxy, policy_dir, local_llm) -> None:
    proxy = real_proxy(make_proxy, policy_dir, local_llm, when="true", attempts=1, exhausted="fixed")
    raw = client_for(proxy).with_options(timeout=300).chat.completions.with_raw_response.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": USER}], **SAMPLING)
    assert raw.parse().choices[0].message.content == FIXED
    record = audit_of(proxy, raw.headers["x-heedful-request-id"])
    assert raw.headers["x-heedful-outcome"] == record["outcome"] == "exhausted_fixed"
    assert record["attempts"] == 1 and record["returned"] == FIXED and record["reply"] not in ("", FIXED)
