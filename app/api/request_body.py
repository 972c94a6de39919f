"""Reading and validating request bodies into OpenAI-style errors that name the field."""

from __future__ import annotations

import json
import re
from typing import TypeVar

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
        data = json.loads(body, parse_constant=_no_constant)
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


def parse(model: type[Model], data: object) -> Model:
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_request")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in first["loc"]).replace(".[", "[")
        raise InvalidRequest(f"{param}: {first['msg']}", param=param, code="invalid_value") from exc


def tenant_of(request: Request, header: str, keys: dict[str, str], trust_header: bool | None = None) -> str:
    """The tenant: a mapped API key always decides; the client's header counts only where the operator trusts it."""
    authorization = request.headers.get("authorization", "")
    token = authorization.removeprefix("Bearer ").strip()
    if token in keys:
        return keys[token]
    trusted = trust_header if trust_header is not None else not keys
    named = request.headers.get(header)
    return named if named and trusted else "default"
