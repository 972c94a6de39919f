"""The console's pages and JSON API (FastAPI, Jinja2, no script build). Every route but sign-in needs a principal: a
session (browser) or an `Authorization: Bearer` token (API); every form carries the session's CSRF token."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from markupsafe import escape
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from app.console import pages
from app.console.auth import Principal, csrf_ok, csrf_token, hash_token
from app.console.export import reviewed_lines
from app.console.queries import Filters, decisions_page
from app.console.reviews import ReviewError, record_review, tally
from app.console.runtime import ConsoleRuntime

log = logging.getLogger("heedful.console")
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "heedful_console"
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def principal_of(request: Request) -> tuple[Principal | None, bool]:
    """The caller and whether they came with a bearer token (then no cookie and so no CSRF is involved)."""
    runtime: ConsoleRuntime = request.app.state.console
    token = _bearer(request)
    if token is not None:
        return runtime.tokens.principal(token), True
    who = request.session.get("who")
    if isinstance(who, dict) and isinstance(who.get("token"), str):
        # The session holds the token's hash: a token removed from the file ends its sessions too.
        known = runtime.tokens.principal_by_hash(who["token"])
        return known, False
    return None, False


def create_console(runtime: ConsoleRuntime) -> FastAPI:
    app = FastAPI(title="Heedful review console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = runtime
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["csrf_token"] = lambda request: csrf_token(request.session)
    app.add_middleware(SessionMiddleware, secret_key=runtime.session_secret, session_cookie=SESSION_COOKIE,
                       max_age=8 * 3600, same_site="strict", https_only=runtime.settings.console_secure_cookies)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def page(request: Request, name: str, who: Principal, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"who": who, **context}, status_code=status)

    def need(request: Request, role: str = "viewer", api: bool = False) -> Principal:
        who, bearer = principal_of(request)
        if who is None:
            raise Refused(401, "sign in first: no valid session or bearer token")
        if not who.can(role):
            raise Refused(403, f"{who.name} is a {who.role}; this needs the {role} role")
        if request.method == "POST" and not bearer and api and not csrf_ok(request.session,
                                                                            request.headers.get("x-csrf-token")):
            raise Refused(403, "missing or wrong CSRF token (header x-csrf-token)")
        return who

    async def form_of(request: Request) -> dict[str, str]:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        if not csrf_ok(request.session, values.get("csrf")):
            raise Refused(403, "missing or wrong CSRF token: reload the page and try again")
        return values

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        if request.url.path[len(request.scope.get("root_path", "")):].startswith("/api/"):
            return JSONResponse({"error": {"message": exc.message, "type": "console_error", "param": None,
                                           "code": "unauthorized" if exc.status == 401 else "forbidden"}},
                                status_code=exc.status, headers=_SECURITY_HEADERS)
        if exc.status == 401:
            login = request.url_for("login_form")
            target = urlsplit(str(request.url))
            return RedirectResponse(f"{login.path}?next={target.path}", status_code=303)
        return HTMLResponse(f"<!doctype html><title>Refused</title><h1>Refused</h1><p>{escape(exc.message)}</p>",
                            status_code=exc.status)

    @app.get("/login", name="login_form")
    async def login_form(request: Request, next: str = "") -> Response:
        return templates.TemplateResponse(request, "login.html", {"who": None, "next": _local(next), "error": None})

    @app.post("/login", name="login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        who = runtime.tokens.principal(form.get("token", ""))
        if who is None:
            log.warning("console: sign-in refused", extra={"client": request.client.host if request.client else "?"})
            return templates.TemplateResponse(request, "login.html", {"who": None, "next": _local(form.get("next", "")),
                                              "error": "That token is not valid."}, status_code=401)
        request.session.clear()  # a fresh session (and CSRF token) at every sign-in
        request.session["who"] = {"token": hash_token(form.get("token", "")), "name": who.name}
        log.info("console: signed in", extra={"reviewer": who.name, "role": who.role})
        return RedirectResponse(_local(form.get("next", "")) or str(request.url_for("decisions").path), status_code=303)

    @app.post("/logout", name="logout")
    async def logout(request: Request) -> Response:
        need(request)
        await form_of(request)
        request.session.clear()
        return RedirectResponse(str(request.url_for("login_form").path), status_code=303)

    async def filtered_page(request: Request, template: str, build: Callable[[ConsoleRuntime, Filters], Any]) -> Response:
        """A page of decisions under the query's filters; a filter that does not parse is a 400 with the page's form."""
        who = need(request)
        filters = Filters.from_query(dict(request.query_params))
        try:
            view = await run_in_threadpool(build, runtime, filters)
        except ValueError as exc:
            return page(request, template, who, 400, error=str(exc), filters=filters, view=None)
        return page(request, template, who, filters=filters, view=view, error=None)

    @app.get("/", name="decisions")
    async def decisions(request: Request) -> Response:
        return await filtered_page(request, "decisions.html", pages.decisions_view)

    @app.get("/decisions/{decision_id}", name="decision")
    async def decision(request: Request, decision_id: int) -> Response:
        who = need(request)
        view = await run_in_threadpool(pages.decision_view, runtime, decision_id)
        if view is None:
            return page(request, "missing.html", who, 404, what=f"decision {decision_id}")
        return page(request, "decision.html", who, view=view, error=None, back=_local(request.query_params.get("back", "")))

    @app.post("/decisions/{decision_id}/review", name="review")
    async def review(request: Request, decision_id: int) -> Response:
        who = need(request, "reviewer")
        form = await form_of(request)
        marks = {k[5:]: v for k, v in form.items() if k.startswith("mark_") and v}
        try:
            await run_in_threadpool(record_review, runtime.db, decision_id, who.name, marks, form.get("note", ""))
        except ReviewError as exc:
            view = await run_in_threadpool(pages.decision_view, runtime, decision_id)
            if view is None:
                return page(request, "missing.html", who, 404, what=f"decision {decision_id}")
            return page(request, "decision.html", who, 400, view=view, error=str(exc), back=_local(form.get("back", "")))
        log.info("console: review recorded", extra={"reviewer": who.name, "decision": decision_id})
        back = _local(form.get("back", ""))
        query = urlencode({"saved": "1", **({"back": back} if back else {})})
        return RedirectResponse(f"{request.url_for('decision', decision_id=decision_id).path}?{query}", status_code=303)

    @app.get("/playground", name="playground")
    async def playground(request: Request) -> Response:
        who = need(request)
        return page(request, "playground.html", who, result=None, conversation=pages.EXAMPLE_CONVERSATION,
                    draft=pages.EXAMPLE_DRAFT, error=None)

    @app.post("/playground", name="playground_run")
    async def playground_run(request: Request) -> Response:
        who = need(request)
        form = await form_of(request)
        conversation, draft = form.get("conversation", ""), form.get("draft", "")
        try:
            result = await run_in_threadpool(pages.playground_result, runtime, conversation, draft)
        except ValueError as exc:
            return page(request, "playground.html", who, 400, result=None, conversation=conversation, draft=draft,
                        error=str(exc))
        return page(request, "playground.html", who, result=result, conversation=conversation, draft=draft, error=None)

    @app.get("/charts", name="charts")
    async def charts(request: Request) -> Response:
        return await filtered_page(request, "charts.html", pages.charts_view)

    # The JSON API: the same data for scripts, with a bearer token.
    @app.get("/api/decisions", name="api_decisions")
    async def api_decisions(request: Request) -> Response:
        need(request, api=True)
        filters = Filters.from_query(dict(request.query_params))

        def listed() -> dict[str, Any]:
            with runtime.db.session() as session:
                found = decisions_page(session, filters)
                return {"total": found.total, "total_is_lower_bound": found.more, "page": found.number,
                        "pages": found.pages,
                        "decisions": [pages.list_item(row) for row in found.rows]}

        try:
            return JSONResponse(await run_in_threadpool(listed))
        except ValueError as exc:
            return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error", "param": None,
                                           "code": "invalid_value"}}, status_code=400)

    @app.get("/api/decisions/{decision_id}", name="api_decision")
    async def api_decision(request: Request, decision_id: int) -> Response:
        need(request, api=True)
        found = await run_in_threadpool(pages.decision_json, runtime, decision_id)
        if found is None:
            return JSONResponse({"error": {"message": f"no decision {decision_id}", "type": "not_found", "param": None,
                                           "code": "not_found"}}, status_code=404)
        return JSONResponse(found)

    @app.post("/api/decisions/{decision_id}/review", name="api_review")
    async def api_review(request: Request, decision_id: int) -> Response:
        who = need(request, "reviewer", api=True)
        try:
            body = json.loads(await request.body())
            marks, note = body["marks"], body.get("note", "")
            if not isinstance(marks, dict) or not isinstance(note, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": {"message": "expected JSON {\"marks\": {label: mark}, \"note\": \"...\"}",
                                           "type": "invalid_request_error", "param": "body", "code": "invalid_value"}},
                                status_code=400)
        try:
            stored = await run_in_threadpool(record_review, runtime.db, decision_id, who.name,
                                             {str(k): str(v) for k, v in marks.items()}, note)
        except ReviewError as exc:
            return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error", "param": "marks",
                                           "code": "invalid_value"}}, status_code=400)
        return JSONResponse({"review": stored.id, "decision": decision_id, "reviewer": stored.reviewer, "ts": stored.ts})

    @app.get("/api/tally", name="api_tally")
    async def api_tally(request: Request) -> Response:
        need(request, api=True)
        return JSONResponse(await run_in_threadpool(tally, runtime.db))

    @app.get("/api/export", name="api_export")
    async def api_export(request: Request) -> Response:
        who = need(request, "admin", api=True)
        log.info("console: export", extra={"reviewer": who.name})

        def lines() -> Iterator[str]:
            for line in reviewed_lines(runtime.db):
                yield json.dumps(line, ensure_ascii=False) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson",
                                 headers={"content-disposition": f"attachment; filename=reviewed-{int(time.time())}.jsonl"})

    return app


def _local(target: str) -> str:
    """Only a path on this site may be a redirect target (no open redirect to another host)."""
    parts = urlsplit(target)
    # Browsers read a backslash as a slash: "/\\host" would leave the site.
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return ""
    return target
