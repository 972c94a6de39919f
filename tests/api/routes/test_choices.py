"""Several choices (`n`): every choice is judged, streamed or not, and each leaves its audit record; what is still
passed through unjudged is counted and audited with its reason."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from app.scripted_upstream import SCENARIOS
from tests.conftest import client_for

PACIFICATION = next(s for s in SCENARIOS if s.name == "pacification")


def audit(server):  # type: ignore[no-untyped-def]
    return asyncio.run(server._server.config.app.state.services.store.recent_audit(1000))


def test_a_stream_of_two_choices_judges_each(proxy, scripted) -> None:
    # Choice 0 is already an engaged reply; choice 1 is the pacifying draft the policy repairs.
    scripted.choices["biopsy"] = [PACIFICATION.repaired, PACIFICATION.draft]
    texts: dict[int, str] = {0: "", 1: ""}
    finished: dict[int, str | None] = {}
    with client_for(proxy).chat.completions.with_streaming_response.create(
            model="m", n=2, stream=True, messages=[{"role": "user", "content": PACIFICATION.user}]) as response:
        assert response.headers["x-heedful-choice-outcomes"] == "passed,repaired"
        request_id = response.headers["x-heedful-request-id"]
        for chunk in response.parse():
            for choice in chunk.choices:
                texts[choice.index] += choice.delta.content or ""
                finished[choice.index] = choice.finish_reason or finished.get(choice.index)
    assert texts == {0: PACIFICATION.repaired, 1: PACIFICATION.repaired}
    assert finished == {0: "stop", 1: "stop"}
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert 'reason="stream_with_n"' not in metrics
    records = []
    for _ in range(50):
        records = sorted((r for r in audit(proxy) if r["request_id"] == request_id), key=lambda r: r["choice"])
        if len(records) == 2:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert [(r["choice"], r["outcome"]) for r in records] == [(0, "passed"), (1, "repaired")]


def test_a_json_request_of_many_choices_is_accepted_up_to_openais_bound(proxy, scripted) -> None:
    completion = client_for(proxy).chat.completions.create(
        model="m", n=20, messages=[{"role": "user", "content": "hello there"}])
    assert len(completion.choices) == 20
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(proxy).chat.completions.create(model="m", n=129, messages=[{"role": "user", "content": "hello"}])
    assert caught.value.response.json()["error"]["param"] == "n"


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_reply_is_counted_and_audited_as_a_skip(proxy, scripted, stream: bool) -> None:
    response = httpx.post(f"{proxy.url}/v1/chat/completions", timeout=30, json={
        "model": "fault:tools", "stream": stream, "messages": [{"role": "user", "content": PACIFICATION.user}]})
    assert response.headers["x-heedful-outcome"] == "skipped_tool_call"
    request_id = response.headers["x-heedful-request-id"]
    if stream:
        assert json.loads(response.text.splitlines()[0][6:])["choices"][0]["delta"]["tool_calls"]
    assert [r["outcome"] for r in audit(proxy) if r["request_id"] == request_id] == ["skipped_tool_call"]
    assert 'heedful_skipped_total{reason="tool_call"} 1.0' in httpx.get(f"{proxy.url}/metrics").text


def test_the_repair_calls_of_a_request_are_shared_by_its_choices(proxy, scripted) -> None:
    """The policy's max_attempts (2) bounds the request, not each choice: a large n costs scoring, not model calls."""
    scripted.choices["biopsy"] = [PACIFICATION.draft]
    raw = client_for(proxy).chat.completions.with_raw_response.create(
        model="m", n=3, messages=[{"role": "user", "content": PACIFICATION.user}])
    assert raw.headers["x-heedful-choice-outcomes"] == "repaired,repaired,exhausted_best"
    texts = [choice.message.content for choice in raw.parse().choices]
    assert texts == [PACIFICATION.repaired, PACIFICATION.repaired, PACIFICATION.draft]
    assert len(scripted.requests) == 3  # the draft request and two repairs
    records = [r for r in audit(proxy) if r["request_id"] == raw.headers["x-heedful-request-id"]]
    assert sorted((r["choice"], r["outcome"]) for r in records) == [(0, "repaired"), (1, "repaired"), (2, "exhausted_best")]
