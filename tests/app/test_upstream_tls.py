"""An https upstream's certificate is always checked; a plain-HTTP one skips loading the CA bundle (start-up time)."""

from __future__ import annotations

import ssl

import pytest

from app.upstream import Upstream


def _context(url: str) -> ssl.SSLContext:
    upstream = Upstream(url, None, 10, 1)
    context: ssl.SSLContext = upstream._client._transport._pool._ssl_context  # type: ignore[attr-defined]
    return context


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "HTTPS://gateway.internal:8443/openai/v1"])
def test_an_https_upstream_is_verified(url: str) -> None:
    context = _context(url)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_plain_http_upstream_loads_no_certificates() -> None:
    assert _context("http://127.0.0.1:8000/v1").verify_mode == ssl.CERT_NONE
