"""A proxy with the console mounted, fed by real requests through the official openai client, and an HTTP client that
signs in the way a browser does (form, session cookie, CSRF token)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from app.local_server import LocalServer
from tests.conftest import ProxyFactory, client_for

SESSION_SECRET = "console-session-secret-for-tests-0123456789"
UPSTREAM_KEY = "sk-upstream-deployment-secret-42"
CONVERSATIONS = (
    "I'm scared about my biopsy results on Friday. I can't stop thinking about it.",  # pacification: repaired
    "I didn't get into the PhD program. I feel like such a failure.",  # rushed advice: repaired
    "I'm furious. My manager presented my project to the VP as his own this morning. What should I do?",
    "Can you help me plan a birthday dinner for six people?",  # a plain pass
)


def set_audit(policy_dir: Path, audit: str) -> None:
    """Replace the default policy's audit block (include_texts, sample, retention_days)."""
    path = policy_dir / "default.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"  audit:\n    include_texts: false[^\n]*\n", "  audit:\n" + audit, text, count=1)
    assert audit in text, "the default policy's audit block moved; update set_audit"
    path.write_text(text, encoding="utf-8")


def console_proxy(make_proxy: ProxyFactory, db_url: str, tokens_file: Path, **overrides: Any) -> LocalServer:
    return make_proxy(**({"console": True, "console_db_url": db_url, "console_tokens_file": tokens_file,
                          "console_session_secret": SESSION_SECRET, "console_secure_cookies": False,
                          "upstream_api_key": UPSTREAM_KEY} | overrides))


def send_conversations(server: LocalServer, conversations: tuple[str, ...] = CONVERSATIONS) -> list[str]:
    """Each conversation through the proxy with the official openai client; the request ids the proxy gave."""
    client = client_for(server)
    ids = []
    for text in conversations:
        raw = client.chat.completions.with_raw_response.create(model="gpt-test",
                                                               messages=[{"role": "user", "content": text}])
        raw.parse()
        ids.append(raw.headers["x-heedful-request-id"])
    return ids


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class ConsoleClient:
    def __init__(self, server: LocalServer) -> None:
        self.base = f"{server.url}/console"
        self.http = httpx.Client(base_url=self.base, follow_redirects=False, timeout=30)

    def sign_in(self, token: str) -> httpx.Response:
        form = self.http.get("/login")
        return self.http.post("/login", data={"token": token, "csrf": csrf_in(form.text), "next": ""})

    def csrf(self, path: str = "/") -> str:
        return csrf_in(self.http.get(path).text)

    def wait_for(self, count: int, bearer: str, timeout_s: float = 20) -> dict[str, Any]:
        """The decisions list once the ingester has stored `count` of them."""
        deadline = time.monotonic() + timeout_s
        while True:
            listed: dict[str, Any] = self.http.get("/api/decisions", headers={"authorization": f"Bearer {bearer}"}).json()
            if listed["total"] >= count or time.monotonic() > deadline:
                return listed
            time.sleep(0.2)

    def close(self) -> None:
        self.http.close()


def wait_for(server: LocalServer, count: int, bearer: str) -> dict[str, Any]:
    client = ConsoleClient(server)
    try:
        return client.wait_for(count, bearer)
    finally:
        client.close()
