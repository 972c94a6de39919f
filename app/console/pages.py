"""What each page shows, computed from the database, the scorer and the loaded policies (no HTTP here)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session

from app.console.queries import Filters, Page, decisions_page, facet_values, parse_time, per_rule, rates_over_time
from app.console.render import bar_chart, rate_chart, side_by_side
from app.console.reviews import MARKS, REVIEW_LABELS, current_review, flags_of_row, review_history, tally
from app.console.runtime import ConsoleRuntime
from app.console.schema import DecisionRow
from app.policy.engine import evaluate, policy_values
from app.policy.errors import PolicyError
from app.policy_tools.explain import explain
from app.policy_tools.outcome import effect_of, facts_for
from classifiers import ConversationError, Scores
from classifiers.inputs import view_of
from classifiers.labels import CONTEXT_SIGNALS, HEADLINE_SCORES, SUB_SCORES

EXAMPLE_CONVERSATION = "user: I'm scared about my biopsy results on Friday. I can't stop thinking about it."
EXAMPLE_DRAFT = "Don't worry! I'm sure it's nothing. Try to stay positive and everything will be fine."


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def list_item(row: Any) -> dict[str, Any]:
    return {"id": row.id, "ts": row.ts, "time": when(row.ts), "policy": row.policy, "rule": row.rule,
            "action": row.action, "outcome": row.outcome, "tenant": row.tenant,
            "flags": [f for f in row.flags.split(",") if f], "would_change": row.would_change,
            "reviewed": row.reviewed, "mode": row.mode}


@dataclass(frozen=True)
class DecisionsView:
    page: Page
    items: list[dict[str, Any]]
    facets: dict[str, list[str]]
    labels: tuple[str, ...]
    tally: dict[str, dict[str, int]]


def _facets(runtime: ConsoleRuntime, session: Session) -> dict[str, list[str]]:
    """The filter menus' values, read at most every 30 s (a new tenant shows up in a menu within that)."""
    now = time.monotonic()
    if runtime.facets is None or now - runtime.facets[0] > 30:
        runtime.facets = (now, facet_values(session))
    return runtime.facets[1]


def decisions_view(runtime: ConsoleRuntime, filters: Filters) -> DecisionsView:
    with runtime.db.session() as session:
        found = decisions_page(session, filters)
        facets = _facets(runtime, session)
    return DecisionsView(found, [list_item(r) for r in found.rows], facets, REVIEW_LABELS, tally(runtime.db))


@dataclass(frozen=True)
class Bar:
    name: str
    value: float
    threshold: float
    flagged: bool


@dataclass(frozen=True)
class DecisionView:
    row: DecisionRow
    time: str
    record: dict[str, Any]
    bars: list[Bar]
    context_bars: list[Bar]
    flags: set[str]  # the model's
    review_flags: set[str]  # the model's and the label the deciding rule acted on
    draft_html: Markup | None
    final_html: Markup | None
    would_html: Markup | None
    explanation: str
    review: Any
    marks: dict[str, str]
    history: list[Any]
    labels: tuple[str, ...]
    mark_names: tuple[str, ...]
    record_json: str


def _bars(values: dict[str, float], names: tuple[str, ...], thresholds: dict[str, float], flags: set[str]) -> list[Bar]:
    return [Bar(n, float(values[n]), thresholds.get(n, 0.5), n in flags) for n in names if n in values]


def _explanation(runtime: ConsoleRuntime, row: DecisionRow) -> str:
    record, detail = row.detail.record, row.detail
    if not record.get("scores"):
        return f"No scores were recorded (rule {row.rule}: {record.get('failure') or 'no scoring'})."
    try:
        policy = runtime.policies().by_name(row.policy)
    except PolicyError as exc:
        return f"The policies cannot be loaded now: {exc}"
    if policy is None:
        return f"Policy {row.policy!r} is not loaded now, so its rules cannot be shown."
    scores = Scores(dict(record["scores"]), dict(record.get("context") or {}), list(record.get("flags") or []))
    text = explain(policy, runtime.scorer(), detail.messages or [], detail.reply or "", row.model or None,
                   row.tenant or None, scores=scores)
    if policy.revision != row.policy_revision:
        text = (f"Note: the decision was made by revision {row.policy_revision}; the policy loaded now is revision "
                f"{policy.revision}, so the rules below may differ from those that decided.\n\n" + text)
    return text


def decision_view(runtime: ConsoleRuntime, decision_id: int) -> DecisionView | None:
    with runtime.db.session() as session:
        row = session.get(DecisionRow, decision_id)
    if row is None:
        return None
    record, detail = row.detail.record, row.detail
    thresholds = runtime.scorer().thresholds
    flags = {f for f in row.flags.split(",") if f}
    draft_html = final_html = would_html = None
    if detail.reply is not None and detail.returned is not None:
        draft_html, final_html = side_by_side(detail.reply, detail.returned)
    if detail.reply is not None and detail.would_return is not None:
        _, would_html = side_by_side(detail.reply, detail.would_return)
    found = current_review(runtime.db, decision_id)
    review, marks = found if found else (None, {})
    shown = {k: v for k, v in record.items() if k not in ("scores", "context")}
    return DecisionView(row, when(row.ts), record,
                        _bars(record.get("scores") or {}, HEADLINE_SCORES + SUB_SCORES, thresholds, flags),
                        _bars(record.get("context") or {}, CONTEXT_SIGNALS, thresholds, flags), flags, flags_of_row(row),
                        draft_html, final_html, would_html, _explanation(runtime, row), review, marks,
                        review_history(runtime.db, decision_id), REVIEW_LABELS, MARKS,
                        json.dumps(shown, indent=2, ensure_ascii=False))


def decision_json(runtime: ConsoleRuntime, decision_id: int) -> dict[str, Any] | None:
    with runtime.db.session() as session:
        row = session.get(DecisionRow, decision_id)
    if row is None:
        return None
    detail = row.detail
    out = list_item(row) | {"request_id": row.request_id, "record": detail.record}
    if detail.reply is not None:
        out |= {"messages": detail.messages, "reply": detail.reply, "returned": detail.returned,
                "would_return": detail.would_return}
    found = current_review(runtime.db, decision_id)
    if found:
        review, marks = found
        out["review"] = {"reviewer": review.reviewer, "ts": review.ts, "note": review.note, "marks": marks}
    return out


def parse_conversation(text: str) -> list[dict[str, Any]]:
    """A JSON list of chat messages, or lines `user: ...` / `assistant: ...` / `system: ...` (a line without a role
    continues the previous message)."""
    text = text.strip()
    if not text:
        raise ValueError("the conversation is empty: paste at least one user turn")
    if text.startswith("["):
        try:
            messages = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the conversation is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    else:
        messages = []
        for number, line in enumerate(text.splitlines(), start=1):
            role, sep, content = line.partition(":")
            if sep and role.strip().lower() in ("user", "assistant", "system"):
                messages.append({"role": role.strip().lower(), "content": content.strip()})
            elif messages:
                messages[-1]["content"] += "\n" + line
            elif line.strip():
                raise ValueError(f"line {number}: start each turn with 'user:', 'assistant:' or 'system:'")
    try:
        view_of(messages)
    except ConversationError as exc:
        raise ValueError(f"the conversation: {exc}") from None
    return messages  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PolicyOutcome:
    name: str
    revision: str
    mode: str
    rule: str
    action: str
    effect: str


@dataclass(frozen=True)
class PlaygroundResult:
    bars: list[Bar]
    context_bars: list[Bar]
    flags: list[str]
    outcomes: list[PolicyOutcome]
    explanation: str


def playground_result(runtime: ConsoleRuntime, conversation: str, draft: str) -> PlaygroundResult:
    messages = parse_conversation(conversation)
    if not draft.strip():
        raise ValueError("the draft reply is empty")
    scorer = runtime.scorer()
    scores = scorer.score(messages, draft)
    try:
        policies = runtime.policies()
    except PolicyError as exc:
        raise ValueError(f"the policies cannot be loaded: {exc}") from None
    outcomes = []
    for policy in policies.policies:
        values = policy_values(scores, scorer.thresholds, facts_for(policy, messages), 0)
        verdict = evaluate(policy, values)
        outcomes.append(PolicyOutcome(policy.name, policy.revision, policy.document.spec.mode, verdict.rule_name,
                                      verdict.action.value, effect_of(policy, verdict, draft).summary))
    flags = set(scores.flags)
    return PlaygroundResult(_bars(scores.reply, HEADLINE_SCORES + SUB_SCORES, scorer.thresholds, flags),
                            _bars(scores.context, CONTEXT_SIGNALS, scorer.thresholds, flags), list(scores.flags),
                            outcomes, explain(policies.default, scorer, messages, draft, scores=scores))


@dataclass(frozen=True)
class ChartsView:
    since: float
    until: float
    rates: Markup
    rules: Markup
    outcomes: list[tuple[str, str, int]]
    total: int
    flagged: int
    acted: int
    tally: dict[str, dict[str, int]]
    facets: dict[str, list[str]]


def charts_view(runtime: ConsoleRuntime, filters: Filters, now: float | None = None) -> ChartsView:
    until = parse_time(filters.until) or (time.time() if now is None else now)
    since = parse_time(filters.since) or until - 7 * 86400
    if since >= until:
        raise ValueError("'since' must be before 'until'")
    window = Filters(**{**filters.__dict__, "since": "", "until": ""})
    with runtime.db.session() as session:
        buckets = rates_over_time(session, window, since, until)
        rules = per_rule(session, window, since, until)
        facets = _facets(runtime, session)
    total = sum(b.total for b in buckets)
    return ChartsView(since, until, rate_chart(buckets, "Flag and action rates over time"),
                      bar_chart([(f"{r} ({a})", n) for r, a, n in rules], "Decisions per rule"), rules, total,
                      sum(b.flagged for b in buckets), sum(b.acted for b in buckets), tally(runtime.db), facets)
