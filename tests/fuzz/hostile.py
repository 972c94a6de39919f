"""Hostile requests for the proxy's two POST endpoints (Hypothesis strategies) and the check every answer must pass.

The strategies mix well-formed requests (which go through the real model and the scripted upstream, JSON and stream) with
every kind of bad input a client can send: lone surrogates, NaN/Infinity, numbers past float range and past Python's
digit limit, JSON nested thousands deep, wrong types in every field, huge strings, unicode edge cases, missing and extra
fields, a wrong or missing content type, and bytes that are not UTF-8.

The check: no 5xx, no reset or hang, every error an OpenAI error object with an x-heedful-request-id header, every
stream ending in [DONE] or an OpenAI error event. Used by tests/fuzz (bounded, in CI) and bench/fuzz.py (the long run).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import strategies as st

from app.scripted_upstream import SCENARIOS

CHAT = "/v1/chat/completions"
SCORE = "/v1/guard/score"


@dataclass(frozen=True)
class FuzzRequest:
    path: str
    body: bytes
    content_type: str | None
    kind: str  # what the generator meant to send, for the report


@dataclass
class Verdict:
    status: int | None
    anomaly: str | None = None  # None: the answer was acceptable
    detail: str = ""
    error_code: str | None = None
    stream: bool = False


# --- values -----------------------------------------------------------------------------------------------------------

LONE_SURROGATES = ["\ud800", "\udfff", "hi \ud83d", "\udc00 there", "a\ud800\ud800b"]
EDGE_TEXT = ["", " ", "\x00", "\u200b\u200d\ufeff", "\U0001f600" * 50, "e\u0301" * 100, "\u202etxet desrever",
             "\r\n\t", "\\", "\"", "\u2028\u2029", "\uffff\ufffe", "\U0010ffff", "ﷺ" * 30, "🏳️‍🌈" * 20]


def texts(max_size: int = 200) -> st.SearchStrategy[str]:
    """Any unicode text, lone surrogates included (Hypothesis leaves them out unless asked)."""
    return st.one_of(
        st.text(max_size=max_size),
        st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=max_size),
        st.sampled_from(LONE_SURROGATES + EDGE_TEXT),
        st.builds(lambda a, s, b: a + s + b, st.text(max_size=20), st.sampled_from(LONE_SURROGATES), st.text(max_size=20)),
    )


def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0, -1, 1, 2**63, -(2**63) - 1, 10**400, 1e308, -0.0, 5e-324]),
        st.sampled_from([RawNumber("1e400"), RawNumber("-1e400"), RawNumber("1" * 5000), RawNumber("1.5e-99999"),
                         RawNumber("NaN"), RawNumber("Infinity"), RawNumber("-Infinity")]),
    )


@dataclass(frozen=True)
class RawNumber:
    """A number written as given, past what json.dumps would write (1e400, a 5,000-digit integer)."""

    text: str


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), numbers(), texts())


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(texts(20), inner, max_size=4)), max_leaves=max_leaves)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the valid value, often a hostile one of any type."""
    return st.one_of(valid, valid, json_values(6))


# --- bodies -----------------------------------------------------------------------------------------------------------

USER_TEXTS = [s.user for s in SCENARIOS] + ["What is the capital of France?", "I'm fine, thanks."]
ROLES = ["system", "developer", "user", "assistant", "tool", "function"]


def content() -> st.SearchStrategy[Any]:
    part = st.fixed_dictionaries({"type": st.sampled_from(["text", "input_text", "image_url"]), "text": maybe(texts())})
    return st.one_of(st.sampled_from(USER_TEXTS), texts(400), st.none(), st.lists(st.one_of(part, json_values(4)),
                                                                                 max_size=3), json_values(4))


def message() -> st.SearchStrategy[Any]:
    valid = st.fixed_dictionaries({"role": st.sampled_from(ROLES), "content": content()},
                                  optional={"name": maybe(st.text(max_size=10)), "tool_calls": json_values(4)})
    return maybe(valid)


def conversation() -> st.SearchStrategy[Any]:
    realistic = st.builds(lambda history, last: [*history, {"role": "user", "content": last}],
                          st.lists(message(), max_size=4), st.one_of(st.sampled_from(USER_TEXTS), texts(300)))
    return st.one_of(realistic, realistic, st.lists(message(), max_size=6), json_values(6))


def model_names() -> st.SearchStrategy[Any]:
    # The scripted upstream reads fault injections ("fault:timeout") and benchmark lengths ("words:N") from the model
    # name; a client cannot reach those against a real upstream, so they are left out.
    names = st.one_of(st.sampled_from(["gpt-4o-mini", "scripted-empathy-1"]), texts(60)).filter(
        lambda n: not isinstance(n, str) or ("fault:" not in n and not n.startswith("words:")))
    return st.one_of(names, names, json_values(4).filter(lambda v: not isinstance(v, str)))


EXTRA_KEYS = ["temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop", "user", "stream_options",
              "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "tools", "tool_choice",
              "response_format", "metadata", "logit_bias", "parallel_tool_calls", "store", "modalities", "x_vendor"]


def chat_body() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"messages": conversation(), "model": model_names()},
        optional={"stream": maybe(st.booleans()), "n": maybe(st.integers(1, 3)),
                  **{key: json_values(4) for key in EXTRA_KEYS}, "temperature": maybe(st.floats(0, 2)),
                  "stream_options": maybe(st.fixed_dictionaries({"include_usage": st.booleans()})),
                  "max_tokens": maybe(st.integers(1, 500))},
    ).flatmap(_drop_some)


def score_body() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"messages": conversation(), "reply": maybe(st.one_of(st.sampled_from([s.draft for s in SCENARIOS]), texts(400)))},
        optional={"model": model_names(), "policy": maybe(st.sampled_from(["default", "companion", "nope"])),
                  "x_extra": json_values(3)},
    ).flatmap(_drop_some)


def _drop_some(body: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Now and then a required field goes missing."""
    return st.sets(st.sampled_from(sorted(body)), max_size=1).map(
        lambda gone: {k: v for k, v in body.items() if k not in gone}) | st.just(body)


def encode(value: Any, style: str) -> bytes:
    """JSON as a careless or hostile client writes it: NaN as is, surrogates escaped or raw (not UTF-8 then)."""
    text = _dump(value, ensure_ascii=style != "raw")
    return text.encode("utf-8", "surrogatepass")


def _dump(value: Any, ensure_ascii: bool) -> str:
    if isinstance(value, RawNumber):
        return value.text
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_dump(str(k), ensure_ascii)}: {_dump(v, ensure_ascii)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v, ensure_ascii) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**4000:
        return str(value)[:4000]  # Python refuses to print more digits than its limit; RawNumber covers longer ones
    return json.dumps(value, ensure_ascii=ensure_ascii)


# --- raw bodies that are not JSON, or JSON past every limit --------------------------------------------------------------

def raw_bodies() -> st.SearchStrategy[tuple[str, bytes]]:
    depth = st.integers(100, 20_000)
    return st.one_of(
        depth.map(lambda d: ("deep_array", b"[" * d + b"]" * d)),
        depth.map(lambda d: ("deep_object", b'{"a":' * d + b"1" + b"}" * d)),
        depth.map(lambda d: ("deep_messages", b'{"model":"m","messages":[{"role":"user","content":' + b"[" * d
                             + b"]" * d + b"}]}")),
        depth.map(lambda d: ("deep_unclosed", b"[" * d)),
        st.binary(max_size=300).map(lambda b: ("binary", b)),
        st.binary(min_size=1, max_size=40).map(lambda b: ("invalid_utf8", b'{"model":"m","messages":[{"role":"user",'
                                                          b'"content":"' + b"\xff\xfe" + b + b'"}]}')),
        st.sampled_from([b"", b"null", b"[]", b"1", b'"text"', b"{", b'{"messages": [}', b"\xef\xbb\xbf{}",
                         b'{"messages": NaN}', b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]} trailing']
                        ).map(lambda b: ("malformed", b)),
        st.sampled_from([1_000, 300_000, 2_100_000]).map(lambda n: ("huge_string", b'{"model":"m","messages":[{"role":"user","content":"'
                                                     + b"x" * n + b'"}]}')),
        st.sampled_from([2, 500, 5_000]).map(lambda n: ("many_messages", json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}] * n}).encode())),
    )


CONTENT_TYPES = ["application/json", "application/json", "application/json", "application/json; charset=latin-1",
                 "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]


# Built once: a strategy built inside a draw is built again for every example, which made generation 15 times slower.
_CHAT_BODY, _SCORE_BODY, _RAW_BODIES = chat_body(), score_body(), raw_bodies()


@st.composite
def requests(draw: st.DrawFn) -> FuzzRequest:
    path = draw(st.sampled_from([CHAT, CHAT, SCORE]))
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if draw(st.integers(0, 9)) == 0:
        kind, body = draw(_RAW_BODIES)
        return FuzzRequest(path, body, content_type, kind)
    value = draw(_CHAT_BODY if path == CHAT else _SCORE_BODY)
    style = draw(st.sampled_from(["escaped", "escaped", "raw"]))
    return FuzzRequest(path, encode(value, style), content_type, "json_" + style)


# --- the check --------------------------------------------------------------------------------------------------------

def _error_shaped(payload: Any) -> bool:
    error = payload.get("error") if isinstance(payload, dict) else None
    return (isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)
            and all(k in error and (error[k] is None or isinstance(error[k], str)) for k in ("param", "code")))


def send(client: httpx.Client, base_url: str, request: FuzzRequest) -> Verdict:
    headers = {"authorization": "Bearer sk-fuzz"}
    if request.content_type:
        headers["content-type"] = request.content_type
    try:
        with client.stream("POST", base_url + request.path, content=request.body, headers=headers) as response:
            return judge(response, request)
    except httpx.TimeoutException as exc:
        return Verdict(None, "hang", f"{type(exc).__name__}: {exc}")
    except httpx.TransportError as exc:  # reset, closed mid-response, protocol error
        return Verdict(None, "reset", f"{type(exc).__name__}: {exc}")


def judge(response: httpx.Response, request: FuzzRequest) -> Verdict:
    status = response.status_code
    is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
    raw = response.read()
    verdict = Verdict(status, stream=is_stream)
    if status >= 500:
        verdict.anomaly, verdict.detail = "5xx", raw[:300].decode("utf-8", "replace")
        return verdict
    if status >= 400:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not _error_shaped(payload):
            verdict.anomaly, verdict.detail = "error_not_openai_shaped", raw[:300].decode("utf-8", "replace")
        elif not response.headers.get("x-heedful-request-id"):
            verdict.anomaly, verdict.detail = "error_without_request_id", raw[:300].decode("utf-8", "replace")
        else:
            verdict.error_code = payload["error"]["code"]
        return verdict
    if is_stream:
        return _judge_stream(raw, verdict)
    try:
        payload = json.loads(raw)
    except ValueError:
        verdict.anomaly, verdict.detail = "unreadable_200", raw[:300].decode("utf-8", "replace")
        return verdict
    expected = "choices" if request.path == CHAT else ("scores", "failure")
    if not isinstance(payload, dict) or not any(k in payload for k in ((expected,) if isinstance(expected, str) else expected)):
        verdict.anomaly, verdict.detail = "unexpected_200", raw[:300].decode("utf-8", "replace")
    return verdict


def _judge_stream(raw: bytes, verdict: Verdict) -> Verdict:
    events = [line[len(b"data: "):] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    for event in events[:-1]:
        try:
            payload = json.loads(event)
        except ValueError:
            verdict.anomaly, verdict.detail = "unreadable_sse_event", event[:300].decode("utf-8", "replace")
            return verdict
        if isinstance(payload, dict) and "error" in payload and not _error_shaped(payload):
            verdict.anomaly, verdict.detail = "sse_error_not_openai_shaped", event[:300].decode("utf-8", "replace")
            return verdict
    last = events[-1] if events else b""
    if last != b"[DONE]":
        try:
            ended_with_error = _error_shaped(json.loads(last))
        except ValueError:
            ended_with_error = False
        if not ended_with_error:
            verdict.anomaly, verdict.detail = "stream_not_finished", raw[-300:].decode("utf-8", "replace")
        else:
            verdict.error_code = "stream_error_event"
    return verdict


@dataclass
class Tally:
    """Counts for the report: requests by endpoint and kind, answers by status, anomalies with one example each."""

    sent: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    streams: int = 0
    anomalies: dict[str, int] = field(default_factory=dict)
    examples: dict[str, tuple[FuzzRequest, Verdict]] = field(default_factory=dict)

    def add(self, request: FuzzRequest, verdict: Verdict) -> None:
        self.sent += 1
        status = str(verdict.status) if verdict.status is not None else "no answer"
        self.by_status[status] = self.by_status.get(status, 0) + 1
        kind = f"{request.path} {request.kind}"
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.streams += verdict.stream
        if verdict.anomaly:
            self.anomalies[verdict.anomaly] = self.anomalies.get(verdict.anomaly, 0) + 1
            self.examples.setdefault(verdict.anomaly, (request, verdict))
