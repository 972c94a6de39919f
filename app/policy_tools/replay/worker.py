"""Scoring for replay: parse a chunk of log lines, score them in one batch and let each policy decide.

Runs in worker processes (each with its own Scorer on one thread) or in the main process. Only compact results come
back: scores, the decisions and short snippets for examples, never whole conversations."""

from __future__ import annotations

from pathlib import Path

import json
from dataclasses import dataclass
from typing import Any

from app.policy.loader import LoadedPolicy, parse_policy
from app.policy.cel_env import CONTEXT_FIELDS, REPLY_FIELDS
from app.policy.engine import evaluate, policy_values
from app.policy_tools.outcome import facts_for
from classifiers import ConversationError, Scorer
from classifiers.inputs import message_text, view_of

SNIPPET = 240
SCORE_NAMES = REPLY_FIELDS
CONTEXT_NAMES = CONTEXT_FIELDS


@dataclass(frozen=True)
class Line:
    """One replayed line: its number, id, scores (SCORE_NAMES then CONTEXT_NAMES), (rule, action) per policy, snippets."""

    number: int
    id: Any
    values: tuple[float, ...]
    decisions: tuple[tuple[str, str], ...]
    user: str
    reply: str
    also: tuple[tuple[str, ...], ...] = ()  # per policy: continuing rules (crisis resources) applied besides the decision


@dataclass(frozen=True)
class Skipped:
    number: int
    reason: str


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def parse(number: int, text: str) -> tuple[Any, list[dict[str, Any]], str, str | None, str | None] | Skipped:
    """(id, messages, reply, model, tenant) from a batch-scoring line or an audit record with texts."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return Skipped(number, f"not valid JSON ({exc.msg})")
    if not isinstance(row, dict):
        return Skipped(number, "not a JSON object")
    messages, reply = row.get("messages"), row.get("reply")
    if messages is None and "request_id" in row:
        return Skipped(number, "audit record without texts (set spec.audit.include_texts)")
    if not isinstance(messages, list) or not isinstance(reply, str):
        return Skipped(number, "needs 'messages' (a list) and 'reply' (a string)")
    try:
        view_of(messages)
    except ConversationError as exc:
        return Skipped(number, f"messages: {exc}")
    model, tenant = row.get("model"), row.get("tenant")
    return (row.get("id", row.get("request_id", number)), messages, reply,
            model if isinstance(model, str) else None, tenant if isinstance(tenant, str) else None)


class ReplayWorker:
    def __init__(self, policies: list[tuple[str, str]], model_dir: str, threads: int) -> None:
        self.policies: list[LoadedPolicy] = [parse_policy(text, file) for text, file in policies]
        self.scorer = Scorer(Path(model_dir), threads=threads)

    def run(self, chunk: list[tuple[int, str]]) -> list[Line | Skipped]:
        parsed = [(number, parse(number, text)) for number, text in chunk]
        good = [(n, p) for n, p in parsed if not isinstance(p, Skipped)]
        scored = self.scorer.score_many([(p[1], p[2]) for _, p in good]) if good else []
        lines: dict[int, Line | Skipped] = {n: p for n, p in parsed if isinstance(p, Skipped)}
        for (number, (item_id, messages, reply, model, tenant)), scores in zip(good, scored, strict=True):
            decisions, also = [], []
            for policy in self.policies:
                values = policy_values(scores, self.scorer.thresholds, facts_for(policy, messages, model, tenant), 0)
                verdict = evaluate(policy, values)
                decisions.append((verdict.rule_name, verdict.action.value))
                also.append(tuple(rule.name for rule in verdict.also if rule.name != verdict.rule_name))
            user = message_text(messages[-1].get("content"))
            values_out = tuple(scores.reply[n] for n in SCORE_NAMES) + tuple(scores.context.get(n, 0.0) for n in CONTEXT_NAMES)
            lines[number] = Line(number, item_id if isinstance(item_id, (str, int, float)) else str(item_id),
                                 values_out, tuple(decisions), _snip(user), _snip(reply), tuple(also))
        return [lines[n] for n, _ in chunk]


# One worker per process: set by the pool's initializer, read by each task (process-local, never shared).
_WORKER: ReplayWorker | None = None


def init_process(policies: list[tuple[str, str]], model_dir: str, threads: int) -> None:
    global _WORKER
    _WORKER = ReplayWorker(policies, model_dir, threads)


def run_chunk(chunk: list[tuple[int, str]]) -> list[Line | Skipped]:
    assert _WORKER is not None, "init_process was not called"
    return _WORKER.run(chunk)
