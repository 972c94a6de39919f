"""Bad requests and upstream faults come back as OpenAI error objects with the right status."""

from __future__ import annotations

import httpx
import openai
import pytest

from app.local_server import free_port
from tests.conftest import client_for

USER = [{"role": "user", "content": "hello there"}]


def post(proxy, **kwargs):  # type: ignore[no-untyped-def]
    return httpx.post(f"{proxy.url}/v1/chat/completions", timeout=30, **kwargs)


def test_malformed_json_is_400(proxy) -> None:
    r = post(proxy, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m"}, "messages"),
    ({"messages": USER}, "model"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": USER, "n": 0}, "n"),
])
def test_invalid_request_names_the_field(proxy, body: dict, param: str) -> None:
    r = post(proxy, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_oversized_body_is_413(make_proxy) -> None:
    proxy = make_proxy(max_body_bytes=1000)
    r = post(proxy, json={"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]})
    assert r.status_code == 413
    assert "limit" in r.json()["error"]["message"]


def test_upstream_5xx_is_502(proxy) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(proxy).chat.completions.create(model="fault:500", messages=USER)
    assert caught.value.status_code == 502


def test_upstream_timeout_is_504(make_proxy) -> None:
    proxy = make_proxy(upstream_timeout_s=0.5)
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(proxy).chat.completions.create(model="fault:timeout", messages=USER)
    assert caught.value.status_code == 504
    assert 'heedful_guard_failures_total{kind="upstream_timeout"} 1.0' in httpx.get(f"{proxy.url}/metrics").text


def test_connection_refused_is_502(make_proxy) -> None:
    proxy = make_proxy(upstream=f"http://127.0.0.1:{free_port()}/v1")
    r = post(proxy, json={"model": "m", "messages": USER})
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "upstream_error"


def test_malformed_upstream_json_is_502(proxy) -> None:
    r = post(proxy, json={"model": "fault:malformed", "messages": USER})
    assert r.status_code == 502


def test_upstream_4xx_passes_through_as_it_came(proxy) -> None:
    r = post(proxy, json={"model": "fault:400", "messages": USER})
    assert r.status_code == 400
    assert r.json()["error"] == {"message": "scripted bad request", "type": "invalid_request_error", "param": "model",
                                 "code": "scripted"}


def test_stream_cut_midway_raises_in_the_client(proxy) -> None:
    long_user = [{"role": "user", "content": "I have a presentation tomorrow and I'm stressed. What can I do tonight?"}]
    with pytest.raises(openai.APIError):
        stream = client_for(proxy).chat.completions.create(model="fault:cut", messages=long_user, stream=True)
        list(stream)


def test_stream_from_an_unreachable_upstream_is_502(make_proxy) -> None:
    proxy = make_proxy(upstream=f"http://127.0.0.1:{free_port()}/v1")
    r = post(proxy, json={"model": "m", "messages": USER, "stream": True})
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "upstream_error"


@pytest.mark.parametrize("raw", [
    b'{"model":"m","messages":[{"role":"user","content":"hi \\ud800"}]}',
    b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi \\ud800"}]}',
    b'{"model":"m","temperature":NaN,"messages":[{"role":"user","content":"hi"}]}',
    b'{"model":"m","messages":[{"role":"user","content":"hi"}],"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
])
def test_hostile_bodies_get_an_openai_error_with_a_request_id(proxy, raw: bytes) -> None:
    """Lone surrogates, NaN and absurd nesting are the client's error (400), never a 500 or a reset connection."""
    r = httpx.post(f"{proxy.url}/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json" and r.headers["x-heedful-request-id"]


def test_a_hostile_body_to_guard_score_is_400(proxy) -> None:
    raw = b'{"messages":[{"role":"user","content":"hi \\ud800"}],"reply":"x"}'
    r = httpx.post(f"{proxy.url}/v1/guard/score", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
