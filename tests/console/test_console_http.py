"""The console mounted in a real proxy that served real requests (official openai client, real model, scripted upstream
over a socket): the review flow over HTTP, and the security rules: no anonymous access, roles, CSRF, texts only where
the policy keeps them, no secret in pages or logs. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from app.cli import build_parser
from app.config import Settings
from app.console.runtime import build_runtime
from app.console.web import create_console
from app.policy_tools.replay.worker import parse as replay_parse
from classifiers.batch import parse_line
from tests.conftest import ProxyFactory
from tests.console.helpers import (CONVERSATIONS, SESSION_SECRET, UPSTREAM_KEY, ConsoleClient, console_proxy,
                                   send_conversations, set_audit, wait_for)

TEXTS = "    include_texts: true\n"


@pytest.fixture
def texts_kept(policy_dir: Path) -> Path:
    set_audit(policy_dir, TEXTS)
    return policy_dir


def _decision(listed: dict[str, object], rule: str) -> int:
    return next(int(d["id"]) for d in listed["decisions"] if d["rule"] == rule)  # type: ignore[attr-defined, index]


def test_review_flow_and_export(make_proxy: ProxyFactory, texts_kept: Path, db_url: str,
                                tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    file, clear = tokens
    server = console_proxy(make_proxy, db_url, file)
    request_ids = send_conversations(server)
    console = ConsoleClient(server)
    listed = console.wait_for(len(CONVERSATIONS), clear["viewer"])
    assert listed["total"] == len(CONVERSATIONS)
    assert {d["rule"] for d in listed["decisions"]} >= {"repair-pacification", "none"}

    assert console.sign_in(clear["reviewer"]).status_code == 303
    page = console.http.get("/", params={"action": "regenerate"})
    assert page.status_code == 200 and "reviewer-person (reviewer)" in page.text
    assert page.text.count('class="open"') == sum(1 for d in listed["decisions"] if d["action"] == "regenerate")
    decision = _decision(listed, "repair-pacification")
    opened = console.http.get(f"/decisions/{decision}")
    assert opened.status_code == 200
    assert "biopsy" in opened.text and "<del>" in opened.text and "<ins>" in opened.text  # draft vs final, highlighted
    assert "FIRES" in opened.text  # the explain output for the recorded scores

    saved = console.http.post(f"/decisions/{decision}/review", data={
        "csrf": console.csrf(f"/decisions/{decision}"), "mark_pacification": "false_flag", "mark_distress": "correct",
        "note": "the reassurance was fine here"})
    assert saved.status_code == 303
    tally = console.http.get("/api/tally", headers={"authorization": f"Bearer {clear['viewer']}"}).json()
    assert tally["pacification"]["false_flag"] == 1
    assert '<td class="false_flag">1</td>' in console.http.get("/").text  # counted where a reviewer sees it

    out = tmp_path / "reviewed.jsonl"
    args = build_parser().parse_args(["review", "export", "--db-url", db_url, "--output", str(out)])
    assert args.run(args) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["id"] in request_ids and line["labels"]["pacification"] == 0
    assert line["review"]["reviewer"] == "reviewer-person" and line["review"]["note"] == "the reassurance was fine here"
    # The line is batch-scoring input and replay input as it is.
    assert parse_line(out.read_text().splitlines()[0], 1).reply == line["reply"]
    assert replay_parse(1, out.read_text().splitlines()[0])[0] == line["id"]  # type: ignore[index]
    # The API export (admin only) gives the same line.
    exported = console.http.get("/api/export", headers={"authorization": f"Bearer {clear['admin']}"})
    assert [json.loads(x) for x in exported.text.splitlines()] == lines
    console.close()


def _console_paths() -> set[tuple[str, str]]:
    runtime = build_runtime(Settings(console_db_url="sqlite://"))
    app = create_console(runtime)
    found = {(method, route.path) for route in app.routes if isinstance(route, APIRoute) for method in route.methods}
    runtime.db.dispose()
    assert any(isinstance(r, Mount) for r in app.routes)  # static assets: no data in them
    return found


GUARDED = {("GET", "/"), ("GET", "/decisions/{decision_id}"), ("POST", "/decisions/{decision_id}/review"),
           ("GET", "/playground"), ("POST", "/playground"), ("GET", "/charts"), ("POST", "/logout"),
           ("GET", "/api/decisions"), ("GET", "/api/decisions/{decision_id}"),
           ("POST", "/api/decisions/{decision_id}/review"), ("GET", "/api/tally"), ("GET", "/api/export")}


def test_every_page_and_api_refuses_without_a_valid_token(make_proxy: ProxyFactory, texts_kept: Path,
                                                          tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    file, clear = tokens
    # Every route the console has is in the list below, except the sign-in form itself.
    assert _console_paths() - GUARDED == {("GET", "/login"), ("POST", "/login")}
    server = console_proxy(make_proxy, f"sqlite:///{tmp_path / 'c.db'}", file)
    send_conversations(server, CONVERSATIONS[:1])
    wait_for(server, 1, clear["viewer"])
    with httpx.Client(base_url=f"{server.url}/console", follow_redirects=False) as http:
        for method, path in sorted(GUARDED):
            url = path.replace("{decision_id}", "1")
            for headers in ({}, {"authorization": "Bearer hdc_not-a-real-token"}, {"authorization": "Basic eDp5"}):
                answer = http.request(method, url, headers=headers, data={"mark_pacification": "correct"}
                                      if method == "POST" and "/api/" not in url else None)
                if "/api/" in url:
                    assert answer.status_code == 401, (method, url, headers)
                    assert answer.json()["error"]["code"] == "unauthorized"
                else:
                    assert answer.status_code == 303 and "/console/login" in answer.headers["location"], (method, url)
                assert "biopsy" not in answer.text and "pacification" not in answer.text


def test_a_viewer_cannot_review_and_csrf_is_enforced(make_proxy: ProxyFactory, texts_kept: Path,
                                                     tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    file, clear = tokens
    server = console_proxy(make_proxy, f"sqlite:///{tmp_path / 'c.db'}", file)
    send_conversations(server, CONVERSATIONS[:1])
    viewer = ConsoleClient(server)
    decision = int(viewer.wait_for(1, clear["viewer"])["decisions"][0]["id"])
    assert viewer.sign_in(clear["viewer"]).status_code == 303
    page = viewer.http.get(f"/decisions/{decision}")
    assert "review-form" not in page.text and "needs the reviewer role" in page.text
    refused = viewer.http.post(f"/decisions/{decision}/review", data={"csrf": viewer.csrf(), "mark_pacification": "correct"})
    assert refused.status_code == 403 and "viewer" in refused.text
    by_token = viewer.http.post(f"/api/decisions/{decision}/review", json={"marks": {"pacification": "correct"}},
                                headers={"authorization": f"Bearer {clear['viewer']}"})
    assert by_token.status_code == 403

    reviewer = ConsoleClient(server)
    # Sign-in itself needs the form's CSRF token.
    assert reviewer.http.post("/login", data={"token": clear["reviewer"]}).status_code == 403
    assert reviewer.sign_in(clear["reviewer"]).status_code == 303
    form = {"mark_pacification": "correct", "note": "x"}
    assert reviewer.http.post(f"/decisions/{decision}/review", data=form).status_code == 403
    assert reviewer.http.post(f"/decisions/{decision}/review", data=form | {"csrf": "forged"}).status_code == 403
    # The JSON API with the session cookie (not a bearer token) needs the CSRF header as well.
    assert reviewer.http.post(f"/api/decisions/{decision}/review", json={"marks": {"pacification": "correct"}}).status_code == 403
    # The session's CSRF token is not another session's.
    assert reviewer.http.post(f"/decisions/{decision}/review", data=form | {"csrf": viewer.csrf()}).status_code == 403
    bearer = {"authorization": f"Bearer {clear['viewer']}"}
    assert reviewer.http.get("/api/tally", headers=bearer).json()["pacification"]["correct"] == 0  # nothing stored
    assert reviewer.http.get("/api/export", headers=bearer).status_code == 403  # export is for admins

    ok = reviewer.http.post(f"/decisions/{decision}/review", data=form | {"csrf": reviewer.csrf()})
    assert ok.status_code == 303
    stored = reviewer.http.get(f"/api/decisions/{decision}", headers=bearer).json()
    assert stored["review"]["reviewer"] == "reviewer-person"  # attributed to the signed-in person
    viewer.close()
    reviewer.close()


def test_texts_are_absent_when_the_policy_does_not_keep_them(make_proxy: ProxyFactory, db_url: str,
                                                              tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    file, clear = tokens
    server = console_proxy(make_proxy, db_url, file)  # the default policy: include_texts false
    send_conversations(server, CONVERSATIONS[:2])
    console = ConsoleClient(server)
    listed = console.wait_for(2, clear["admin"])
    console.sign_in(clear["reviewer"])
    decision = _decision(listed, "repair-pacification")
    page = console.http.get(f"/decisions/{decision}").text
    assert "does not keep texts" in page
    for words in ("biopsy", "Don't worry", "PhD program", "frightening"):
        assert words not in page
    detail = console.http.get(f"/api/decisions/{decision}", headers={"authorization": f"Bearer {clear['admin']}"}).json()
    assert "messages" not in detail and "reply" not in detail and "biopsy" not in json.dumps(detail)
    console.http.post(f"/decisions/{decision}/review", data={"csrf": console.csrf(), "mark_pacification": "correct"})
    exported = console.http.get("/api/export", headers={"authorization": f"Bearer {clear['admin']}"}).text
    assert exported.count("\n") == 1 and '"messages"' not in exported and "biopsy" not in exported
    console.close()


def test_no_secret_in_pages_cookies_or_logs(make_proxy: ProxyFactory, texts_kept: Path,
                                            tokens: tuple[Path, dict[str, str]], tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    file, clear = tokens
    server = console_proxy(make_proxy, f"sqlite:///{tmp_path / 'c.db'}", file)
    send_conversations(server, CONVERSATIONS[:2])
    console = ConsoleClient(server)
    listed = console.wait_for(2, clear["admin"])
    decision = _decision(listed, "repair-pacification")
    console.http.post("/login", data={"token": "hdc_wrong-token-value", "csrf": console.csrf("/login")})  # a failed try
    console.sign_in(clear["admin"])
    seen = [console.http.get(path).text for path in ("/", f"/decisions/{decision}", "/charts", "/playground")]
    seen.append(console.http.post("/playground", data={"csrf": console.csrf(), "conversation": "user: hello there",
                                                       "draft": "Hi! How can I help?"}).text)
    seen += [console.http.get(path, headers={"authorization": f"Bearer {clear['admin']}"}).text
             for path in ("/api/decisions", f"/api/decisions/{decision}", "/api/export")]
    seen += [f"{c.name}={c.value}" for c in console.http.cookies.jar]
    seen.append(caplog.text)
    seen.append(json.dumps([r.__dict__ for r in caplog.records], default=str))
    secrets = [*clear.values(), "hdc_wrong-token-value", SESSION_SECRET, UPSTREAM_KEY, "sk-test-client-key"]
    for text in seen:
        for secret in secrets:
            assert secret not in text
    assert "console: signed in" in caplog.text and "console: sign-in refused" in caplog.text
    console.close()


def test_redirect_targets_stay_on_this_site() -> None:
    from app.console.web import _local

    for outside in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)", "evil", "/\\evil.example"):
        assert _local(outside) == ""
    assert _local("/console/?rule=x&page=2") == "/console/?rule=x&page=2"
