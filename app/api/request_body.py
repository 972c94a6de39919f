"""Reading and validating request bodies into OpenAI-style errors that name the field."""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.errors import BodyTooLarge, InvalidRequest

Model = TypeVar("Model", bound=BaseModel)
_MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


async def read_json(request: Request, max_bytes: int) -> object:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"request body is {declared} bytes; the limit is {max_bytes}", code="body_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(f"request body exceeds the limit of {max_bytes} bytes", code="body_too_large")
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise InvalidRequest("request body is nested too deeply", code="invalid_json") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from exc
    # A lone UTF-16 surrogate parses ("\ud800", or raw bytes the parser lets through), but no tokenizer or upstream can
    # encode it. Only a body that could hold one is encoded again to find out.
    if _MAY_HOLD_SURROGATE.search(body) is None:
        return data
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"request body has a string that is not valid Unicode: {exc.reason} at character "
                             f"{exc.start} (an unpaired surrogate such as \\ud800)", code="invalid_json") from exc
    except RecursionError as exc:
        raise InvalidRequest("request body is nested too deeply", code="invalid_json") from exc
    return data


def _no_constant(name: str) -> float:
    """NaN and Infinity are not JSON; Python's parser accepts them, the upstream would not."""
    raise ValueError(f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    """1e400 parses as infinity: no upstream takes that, and the proxy could not even send it on."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that reads its body itself (read_json and parse, for the size limit and
    OpenAI-shaped errors): the model's JSON Schema, its definitions inlined so the operation stands alone."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


def parse(model: type[Model], data: object) -> Model:
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_request")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        located = [(_param(data, e), e["msg"]) for e in exc.errors()]
        # A field that takes several types fails once per type; the type that got furthest into the body says most
        # (a list of parts with a bad part: that part), and types that failed at the same place share one message.
        param = max((p for p, _ in located), key=lambda p: p.count(".") + p.count("["))
        messages = list(dict.fromkeys(m for p, m in located if p == param))
        raise InvalidRequest(f"{param}: {'; or '.join(messages)}", param=param, code="invalid_value") from exc


def _param(data: object, error: Any) -> str:
    """Where the error is, as the client wrote it (messages[0].content): pydantic's location also names the member of a
    union it tried (`str`, `list[...]`), which is no part of the body, so only steps that exist in the body are kept
    (and a missing key at the end)."""
    steps: list[str | int] = []
    location = list(error["loc"])
    for index, step in enumerate(location):
        if isinstance(data, dict) and isinstance(step, str) and step in data:
            data = data[step]
        elif isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            data = data[step]
        elif not (error["type"] == "missing" and index == len(location) - 1):
            continue
        steps.append(step)
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))


def tenant_of(request: Request, header: str, keys: dict[str, str], trust_header: bool | None = None) -> str:
    """The tenant: a mapped API key always decides; the client's header counts only where the operator trusts it."""
    authorization = request.headers.get("authorization", "")
    token = authorization.removeprefix("Bearer ").strip()
    if token in keys:
        return keys[token]
    trusted = trust_header if trust_header is not None else not keys
    named = request.headers.get(header)
    return named if named and trusted else "default"


_ERROR_DESCRIPTIONS = {400: "The body is not valid: the error names the field (`param`) and what is wrong",
                       413: "The body is over the size limit", 502: "The upstream could not give an answer",
                       504: "The upstream did not answer in time"}


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for the errors a route returns: an OpenAI error object and the request id header."""
    from app.openai.protocol import ErrorResponse

    header = {"x-heedful-request-id": {"description": "The request's id, as in the audit record and the logs",
                                       "required": True, "schema": {"type": "string"}}}
    return {status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status], "headers": header}
            for status in statuses}


_SSE_EVENT = {"type": "object", "properties": {"data": {"type": "string"}, "event": {"type": "string"}}, "required": ["data"]}
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {
    # OpenAPI 3.1 describes an event stream by its events.
    "itemSchema": _SSE_EVENT,
    "schema": {"type": "array", "items": _SSE_EVENT,
               "description": "Server-sent events: `data: {chat.completion.chunk}` events, then `data: [DONE]`"}}}}}
