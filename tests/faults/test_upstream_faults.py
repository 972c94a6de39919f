"""Any upstream behaviour: the client gets its answer, or an OpenAI error object with `x-heedful-request-id`, within the
upstream deadline + 1 s; never a 500, a reset connection or a stream cut without an error event; every request leaves
an audit record and gives its in-flight slot back. JSON through the official openai client, streams as raw SSE (to see
the error event itself), both against the fault-injecting upstream over a real socket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest

from app.fault_upstream import RATE_LIMITS, FaultUpstream
from app.local_server import LocalServer
from app.scripted_upstream import SCENARIOS
from tests.conftest import client_for, wait_for
from tests.faults.conftest import CAP_BYTES, DEADLINE_S, HUGE_BYTES, last_connection

USER = [{"role": "user", "content": "hello there"}]
ALLOWED_S = DEADLINE_S + 1.0
ANSWERED = ("none", "surrogate", "no_done")
FAILING = {"hang_headers": 504, "drip": 504, "drip_body": 504, "hang_mid": 504, "hang_late": 504, "reset": 502,
           "reset_mid": 502, "garbage": 502, "garbage_body": 502, "wrong_shape": 502, "huge": 502, "cut_no_finish": 502}


def audit_of(server: LocalServer, request_id: str) -> list[dict[str, Any]]:
    services = server._server.config.app.state.services
    return [r for r in asyncio.run(services.store.recent_audit(100_000)) if r.get("request_id") == request_id]


def in_flight(server: LocalServer) -> float:
    line = next(line for line in httpx.get(f"{server.url}/metrics").text.splitlines()
                if line.startswith("heedful_in_flight_requests "))
    return float(line.split()[1])


def assert_accounted(server: LocalServer, request_id: str, outcome: str | None = None) -> None:
    assert wait_for(lambda: bool(audit_of(server, request_id)), 3), f"no audit record for {request_id}"
    if outcome is not None:
        assert {r["outcome"] for r in audit_of(server, request_id)} == {outcome}
    assert wait_for(lambda: in_flight(server) == 0, 3), "the in-flight gauge did not return to 0"


def assert_openai_error(body: Any, status: int) -> None:
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    assert status != 500


@pytest.mark.parametrize("fault", [*ANSWERED, *FAILING])
def test_json_request_gets_an_answer_or_an_openai_error_within_the_deadline(fault_proxy: LocalServer, fault: str) -> None:
    client = client_for(fault_proxy)
    started = time.monotonic()
    try:
        raw = client.chat.completions.with_raw_response.create(model=f"fault:{fault}", messages=USER)
        elapsed = time.monotonic() - started
        assert fault in ANSWERED, f"fault:{fault} should have failed"
        content = raw.parse().choices[0].message.content
        assert "Thanks" in content
        if fault == "surrogate":
            assert "\ufffd" in content
        request_id = raw.headers["x-heedful-request-id"]
        assert_accounted(fault_proxy, request_id)
    except openai.APIStatusError as error:
        elapsed = time.monotonic() - started
        assert fault in FAILING, f"fault:{fault} should have been answered: {error}"
        assert error.status_code == FAILING[fault]
        assert_openai_error(error.response.json(), error.status_code)
        request_id = error.response.headers["x-heedful-request-id"]
        assert_accounted(fault_proxy, request_id, "upstream_error")
    assert elapsed <= ALLOWED_S, f"fault:{fault} took {elapsed:.2f} s (deadline {DEADLINE_S} s)"


@pytest.mark.parametrize("fault", [*ANSWERED, *FAILING])
def test_stream_gets_an_answer_or_an_openai_error_within_the_deadline(fault_proxy: LocalServer, fault: str) -> None:
    started = time.monotonic()
    with httpx.stream("POST", f"{fault_proxy.url}/v1/chat/completions", timeout=30,
                      json={"model": f"fault:{fault}", "messages": USER, "stream": True}) as response:
        body = response.read()
    elapsed = time.monotonic() - started
    assert elapsed <= ALLOWED_S, f"fault:{fault} took {elapsed:.2f} s (deadline {DEADLINE_S} s)"
    request_id = response.headers["x-heedful-request-id"]
    if response.status_code != 200:  # failed before the stream started: a plain OpenAI error
        assert fault in FAILING and response.status_code == FAILING[fault], (fault, response.status_code)
        assert_openai_error(response.json(), response.status_code)
        assert_accounted(fault_proxy, request_id, "upstream_error")
        return
    events = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
    if fault in ANSWERED:
        assert events[-1] == "[DONE]", events[-3:]
        text = "".join((json.loads(e)["choices"] or [{}])[0].get("delta", {}).get("content") or "" for e in events[:-1])
        assert "Thanks" in text
        assert_accounted(fault_proxy, request_id)
    else:  # the stream had started: it ends with an error event, never silently
        last = json.loads(events[-1])
        assert_openai_error(last, FAILING[fault])
        assert wait_for(lambda: bool(audit_of(fault_proxy, request_id)), 3)
        assert all(r.get("cut", "").startswith("upstream_error") for r in audit_of(fault_proxy, request_id))


def test_a_stream_cut_after_it_started_raises_in_the_openai_client_in_time(fault_proxy: LocalServer) -> None:
    """The text went out (the holdback was met), then the upstream hung: the client gets an error event by the deadline."""
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        for chunk in client_for(fault_proxy).chat.completions.create(model="fault:hang_late", messages=USER, stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert time.monotonic() - started <= ALLOWED_S
    assert "Thanks" in "".join(received)
    assert "deadline" in str(caught.value)


def test_a_huge_reply_is_cut_as_it_arrives(fault_proxy: LocalServer, faulty: FaultUpstream) -> None:
    """Past the byte cap the proxy stops reading and closes the connection: the upstream could not even send it all
    (the rest of the reply never reached the proxy's memory)."""
    before = len(faulty.for_fault("huge"))
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(fault_proxy).chat.completions.create(model="fault:huge", messages=USER)
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["code"] == "upstream_response_too_large"
    connection = last_connection(faulty, "huge", before)
    assert wait_for(lambda: connection.peer_closed is not None, 5)
    # What the upstream got out before the proxy hung up: the cap plus what socket buffers hold, far from the whole.
    assert connection.sent < CAP_BYTES + 12 * 1024 * 1024 < HUGE_BYTES


@pytest.mark.parametrize(("fault", "status", "headers"), [
    ("rate_limited", 429, {"retry-after": "7", "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                           "x-ratelimit-reset-requests": "7s"}),
    ("overloaded", 503, {"retry-after": "3"}),
])
@pytest.mark.parametrize("stream", [False, True])
def test_back_off_headers_pass_through(fault_proxy: LocalServer, fault: str, status: int, headers: dict[str, str],
                                       stream: bool) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        created = client_for(fault_proxy).chat.completions.create(model=f"fault:{fault}", messages=USER, stream=stream)
        list(created) if stream else None
    response = caught.value.response
    assert response.status_code == status
    assert {k: response.headers.get(k) for k in headers} == headers
    assert response.headers["x-heedful-request-id"]
    assert_openai_error(response.json(), status)


@pytest.mark.parametrize("stream", [False, True])
def test_rate_limit_headers_of_an_answered_call_pass_through(fault_proxy: LocalServer, stream: bool) -> None:
    """A client throttles itself on x-ratelimit-remaining-* of every answer, not only of a 429."""
    if stream:
        with client_for(fault_proxy).chat.completions.with_streaming_response.create(
                model="fault:limits", messages=USER, stream=True) as response:
            headers = response.headers
            list(response.iter_lines())
    else:
        headers = client_for(fault_proxy).chat.completions.with_raw_response.create(model="fault:limits",
                                                                                   messages=USER).headers
    assert {k: headers.get(k) for k in RATE_LIMITS} == RATE_LIMITS
    assert headers["x-heedful-request-id"]


def test_each_repair_call_has_its_own_deadline(fault_proxy: LocalServer, faulty: FaultUpstream) -> None:
    """The draft needs a repair and the repair call drips: it ends at the upstream deadline, not at the policy's
    15 s time budget, and the client gets the best draft so far."""
    user = next(s for s in SCENARIOS if s.name == "pacification")
    started = time.monotonic()
    raw = client_for(fault_proxy).chat.completions.with_raw_response.create(
        model="fault:drip_repair", messages=[{"role": "user", "content": user.user}])
    elapsed = time.monotonic() - started
    assert raw.headers["x-heedful-outcome"] == "exhausted_best"
    assert raw.parse().choices[0].message.content == user.draft
    assert elapsed <= 2 * DEADLINE_S + 1, f"took {elapsed:.2f} s"  # the draft's call, then one repair call's deadline
    record = audit_of(fault_proxy, raw.headers["x-heedful-request-id"])[0]
    assert "deadline" in record["repair_error"]
