"""Schemathesis against the published OpenAPI spec: bodies generated from the request schemas (valid ones and ones that
break them) for both POST endpoints of a real running proxy. No 5xx; invalid bodies rejected with a 4xx; every response
as documented (status, content type, the error object and its x-heedful-request-id header).

The operations' strategies are drawn inside one Hypothesis test: schemathesis's own pytest integration (lazy schemas from
a fixture) does not run under pytest 9 yet."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

CI = settings.get_profile("fuzz-ci")


@pytest.fixture(scope="module")
def published_spec(fuzz_proxy):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_url(f"{fuzz_proxy.url}/openapi.json")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/guard/score"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_the_spec_holds_for_generated_bodies(published_spec, fuzz_proxy, path: str, mode: GenerationMode) -> None:  # type: ignore[no-untyped-def]
    operation = published_spec[path]["POST"]

    @settings(CI)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        # A body the schema allows can still be refused with a 400 for what JSON Schema cannot say (the guard judges
        # only a conversation that ends with the user's turn; a policy must exist), so valid data may be rejected.
        case.call_and_validate(base_url=fuzz_proxy.url, excluded_checks=[positive_data_acceptance], timeout=60)

    run()


def test_the_spec_documents_both_request_bodies(fuzz_proxy) -> None:  # type: ignore[no-untyped-def]
    spec = httpx.get(f"{fuzz_proxy.url}/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"messages", "model"} and body.get("additionalProperties", True) is not False
    assert body["properties"]["messages"]["items"]["properties"]["role"]["enum"][:3] == ["system", "developer", "user"]
    assert chat["responses"]["400"]["headers"]["x-heedful-request-id"]["required"] is True
    assert "422" not in chat["responses"]
    score = spec["paths"]["/v1/guard/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(score["required"]) == {"messages", "reply"} and score["additionalProperties"] is False
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")
