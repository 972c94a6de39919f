"""The bad-input matrix: named malformed requests to both endpoints, each with the status, `param` and `code` the client
must get, as an OpenAI error object with an x-heedful-request-id header, over a real socket."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

CHAT, SCORE = "/v1/chat/completions", "/v1/guard/score"
USER = [{"role": "user", "content": "I'm scared about my biopsy results on Friday."}]


def chat(**fields: Any) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": USER} | fields).encode()


def without(key: str, body: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in body.items() if k != key}).encode()


def deep(depth: int) -> bytes:
    return b'{"model": "m", "messages": [{"role": "user", "content": ' + b"[" * depth + b"]" * depth + b"}]}"


SCORE_BODY = {"messages": USER, "reply": "Don't worry, it's nothing."}

# (name, path, body, status, param, code)
MATRIX: list[tuple[str, str, bytes, int, str | None, str]] = [
    ("empty_body", CHAT, b"", 400, None, "invalid_json"),
    ("truncated_json", CHAT, chat()[:-5], 400, None, "invalid_json"),
    ("trailing_garbage", CHAT, chat() + b" x", 400, None, "invalid_json"),
    ("body_is_an_array", CHAT, b"[]", 400, None, "invalid_request"),
    ("body_is_a_string", SCORE, b'"hi"', 400, None, "invalid_request"),
    ("nested_5000_deep", CHAT, deep(5000), 400, None, "invalid_json"),
    ("nested_100000_deep", SCORE, b"[" * 100_000 + b"]" * 100_000, 400, None, "invalid_json"),
    ("lone_surrogate_escaped", CHAT, chat(messages=[{"role": "user", "content": "hi \ud800"}]), 400, None, "invalid_json"),
    ("lone_surrogate_in_score_reply", SCORE, json.dumps(SCORE_BODY | {"reply": "\udfff"}).encode(), 400, None,
     "invalid_json"),
    ("lone_surrogate_raw_bytes", CHAT, chat().replace(b"biopsy", b"\xed\xa0\x80"), 400, None, "invalid_json"),
    ("invalid_utf8", CHAT, chat().replace(b"biopsy", b"\xff\xfe"), 400, None, "invalid_json"),
    ("temperature_nan", CHAT, chat()[:-1] + b', "temperature": NaN}', 400, None, "invalid_json"),
    ("temperature_infinity", CHAT, chat()[:-1] + b', "temperature": -Infinity}', 400, None, "invalid_json"),
    ("number_past_float_range", CHAT, chat()[:-1] + b', "temperature": 1e400}', 400, None, "invalid_json"),
    ("number_past_float_range_in_an_extra", CHAT, chat()[:-1] + b', "x_vendor": {"k": [-2e999]}}', 400, None,
     "invalid_json"),
    ("integer_of_5000_digits", CHAT, chat()[:-1] + b', "seed": ' + b"9" * 5000 + b"}", 400, None, "invalid_json"),
    ("missing_messages", CHAT, without("messages", {"model": "m", "messages": USER}), 400, "messages", "invalid_value"),
    ("empty_messages", CHAT, chat(messages=[]), 400, "messages", "invalid_value"),
    ("messages_not_a_list", CHAT, chat(messages="hello"), 400, "messages", "invalid_value"),
    ("message_not_an_object", CHAT, chat(messages=["hello"]), 400, "messages[0]", "invalid_value"),
    ("message_without_role", CHAT, chat(messages=[{"content": "hi"}]), 400, "messages[0].role", "invalid_value"),
    ("unknown_role", CHAT, chat(messages=[{"role": "robot", "content": "hi"}]), 400, "messages[0].role", "invalid_value"),
    ("content_a_number", CHAT, chat(messages=[{"role": "user", "content": 5}]), 400, "messages[0].content",
     "invalid_value"),
    ("content_part_not_an_object", CHAT, chat(messages=[{"role": "user", "content": ["hi"]}]), 400,
     "messages[0].content[0]", "invalid_value"),
    ("missing_model", CHAT, without("model", {"model": "m", "messages": USER}), 400, "model", "invalid_value"),
    ("empty_model", CHAT, chat(model=""), 400, "model", "invalid_value"),
    ("model_a_number", CHAT, chat(model=4), 400, "model", "invalid_value"),
    ("n_zero", CHAT, chat(n=0), 400, "n", "invalid_value"),
    ("n_past_128", CHAT, chat(n=129), 400, "n", "invalid_value"),
    ("n_a_string", CHAT, chat(n="2"), 400, "n", "invalid_value"),
    ("stream_a_string", CHAT, chat(stream="yes"), 400, "stream", "invalid_value"),
    ("stream_a_number", CHAT, chat(stream=1), 400, "stream", "invalid_value"),
    ("temperature_a_string", CHAT, chat(temperature="hot"), 400, "temperature", "invalid_value"),
    ("max_tokens_a_float", CHAT, chat(max_tokens=1.5), 400, "max_tokens", "invalid_value"),
    ("stream_options_a_string", CHAT, chat(stream=True, stream_options="x"), 400, "stream_options", "invalid_value"),
    ("include_usage_a_string", CHAT, chat(stream=True, stream_options={"include_usage": "yes"}), 400,
     "stream_options.include_usage", "invalid_value"),
    ("stop_a_number", CHAT, chat(stop=5), 400, "stop", "invalid_value"),
    ("user_an_object", CHAT, chat(user={"id": 1}), 400, "user", "invalid_value"),
    ("body_over_the_limit", CHAT, chat(messages=[{"role": "user", "content": "x" * 2_100_000}]), 413, None,
     "body_too_large"),
    ("score_missing_reply", SCORE, without("reply", SCORE_BODY), 400, "reply", "invalid_value"),
    ("score_reply_a_list", SCORE, json.dumps(SCORE_BODY | {"reply": ["a"]}).encode(), 400, "reply", "invalid_value"),
    ("score_unknown_key", SCORE, json.dumps(SCORE_BODY | {"polcy": "default"}).encode(), 400, "polcy", "invalid_value"),
    ("score_unknown_policy", SCORE, json.dumps(SCORE_BODY | {"policy": "nope"}).encode(), 400, "policy",
     "unknown_policy"),
    ("score_not_ending_with_the_user", SCORE, json.dumps(SCORE_BODY | {"messages": [
        *USER, {"role": "assistant", "content": "Earlier reply."}]}).encode(), 400, "messages", "invalid_value"),
    ("score_messages_empty", SCORE, json.dumps(SCORE_BODY | {"messages": []}).encode(), 400, "messages",
     "invalid_value"),
]


@pytest.fixture(scope="module")
def client(fuzz_proxy):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=fuzz_proxy.url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(("path", "body", "status", "param", "code"), [row[1:] for row in MATRIX],
                         ids=[row[0] for row in MATRIX])
def test_bad_input(client: httpx.Client, path: str, body: bytes, status: int, param: str | None, code: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    error = response.json()["error"]
    assert (response.status_code, error["param"], error["code"]) == (status, param, code), error["message"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert len(response.headers["x-heedful-request-id"]) == 32


def test_the_connection_stays_usable_after_every_bad_input(client: httpx.Client) -> None:
    """Bad input gets an answer on the same keep-alive connection, never a reset: then a good request still works."""
    for _, path, body, *_ in MATRIX:
        client.post(path, content=body, headers={"content-type": "application/json"})
    good = client.post(CHAT, content=chat(), headers={"content-type": "application/json"})
    assert good.status_code == 200 and good.json()["choices"][0]["message"]["content"]


def test_unknown_paths_and_methods_answer_with_openai_errors(client: httpx.Client) -> None:
    for method, path, status in (("POST", "/v1/completions", 404), ("GET", CHAT, 405)):
        response = client.request(method, path)
        assert response.status_code == status and response.json()["error"]["type"] == "invalid_request_error"
        assert response.headers["x-heedful-request-id"]
