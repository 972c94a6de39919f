"""One guarded completion, from the upstream call to the audit record, for streaming and JSON clients alike.

The upstream is read as a stream. The draft is held back (the policy's N sentences for a streaming client, the whole
draft for a JSON client) while its windows are scored as sentences complete; then the guard decides, and the pipeline
emits OpenAI chunks: the held chunks and the rest of the stream, or the repaired text. A streaming client receives those
chunks as SSE; a JSON client receives the same chunks collected into one `chat.completion`. Fixed texts from rules that
continue (crisis resources) go out first, before the draft is even read, where they hold on the context alone.

The route (app/api/routes/chat.py) only speaks HTTP: it picks the policy, starts the context pass and hands over.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from app.audit import decision_headers, record_decision, record_skip
from app.errors import UpstreamFailure
from app.guard import Decision, RepairAllowance
from app.openai.protocol import ChatCompletionRequest, choice_text
from app.policy.engine import RequestFacts, leading_prefix_rules, policy_values
from app.policy.loader import LoadedPolicy
from app.policy.model import Holdback, Rule
from app.services import Services
from app.users.profile import UserView
from classifiers import PreparedContext, Scores
from classifiers.encoder import WindowCache
from classifiers.inputs import view_of
from classifiers.labels import REPLY_SCORES

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s|$)|\n\s*\n")
_PIECE = re.compile(r"\S+\s*|\s+")
_READ_AHEAD_ENDS = (".", "!", "?", "\n", "…")
_MAY_END_SENTENCE = re.compile(r"[.!?…\n]")
WHOLE = Holdback(whole=True, sentences=None)


def sentences_in(text: str) -> int:
    return len(_SENTENCE_END.findall(text.strip() + (" " if text.endswith((" ", "\n")) else "")))


def delta_of(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = chunk.get("choices") or []
    return (choices[0].get("delta") or {}) if choices else {}


def chunk_like(template: dict[str, Any], model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": template.get("id", "chatcmpl-heedful"), "object": "chat.completion.chunk",
            "created": template.get("created", int(time.time())), "model": template.get("model", model),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@dataclass
class Held:
    """What was read from the upstream before the decision."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    tool_call: bool = False
    ended: bool = False


class GuardedTurn:
    """One request's guarded completion. `start()` opens the upstream stream and sends nothing; `early_rules` then says
    whether fixed text can go out at once; `decide()` reads the holdback and lets the guard decide; `chunks()` yields
    what the client gets and records the audit at the end."""

    def __init__(self, svc: Services, policy: LoadedPolicy, chat: ChatCompletionRequest, messages: list[dict[str, Any]],
                 facts: RequestFacts, prepared: asyncio.Task[PreparedContext], authorization: str | None,
                 request_id: str, holdback: Holdback, user: asyncio.Future[UserView] | None = None) -> None:
        self.svc, self.policy, self.chat, self.messages, self.facts = svc, policy, chat, messages, facts
        self.prepared, self.authorization, self.request_id, self.holdback = prepared, authorization, request_id, holdback
        self.started = time.perf_counter()
        self.view = view_of(messages)
        self.window_cache: WindowCache = {}
        self.held = Held()
        self.early_rules: tuple[Rule, ...] = ()
        self.sent_early = ""  # fixed text a streaming client already received before the decision
        self.decision: Decision | None = None
        self._upstream: AsyncIterator[dict[str, Any]] | None = None
        self._waited_upstream = 0.0
        self._reading: asyncio.Task[None] | None = None
        self._read_again = False  # a sentence ended while the reader was busy
        self._guessing: str | None = None  # the text whose last window the reader is running now, if it is guessing
        self._audit: tuple[str | None, float] | None = None  # (text released past the holdback, added seconds)
        self._user = user  # what user memory recalls, joined into the facts once the upstream call is under way
        self.choice: int | None = None  # which choice of a several-choice stream this turn judges
        self.absent = False  # a choice asked for that the upstream never wrote
        self.allowance: RepairAllowance | None = None  # repair calls shared with the request's other choices

    @property
    def early_prefix(self) -> str:
        return "".join(rule.text + "\n\n" for rule in self.early_rules if rule.text)

    async def start(self, stream_options: dict[str, Any] | None = None, early: bool = True) -> None:
        """Open the upstream stream (errors before the first chunk raise here) and, for a streaming client, find the
        fixed text that can go out before the draft is read."""
        body = self.chat.upstream_body(**({"stream_options": stream_options} if stream_options else {}))
        try:
            self._upstream = (await self.svc.upstream.stream_chat(body, self.authorization)).__aiter__()
        except UpstreamFailure:
            self.prepared.cancel()
            raise
        if self._user is not None:
            self.facts = replace(self.facts, user=await self._user)
        if early:
            self.early_rules = await self._early_rules()

    def attach(self, chunks: AsyncIterator[dict[str, Any]], choice: int, allowance: RepairAllowance) -> None:
        """Judge one choice of a several-choice stream (app/choices.py) instead of opening a stream of its own."""
        self._upstream, self.choice, self.allowance = chunks, choice, allowance

    def early_headers(self) -> dict[str, str]:
        return {"x-heedful-request-id": self.request_id, "x-heedful-policy": self.policy.name,
                "x-heedful-policy-version": self.policy.version, "x-heedful-policy-revision": self.policy.revision,
                "x-heedful-mode": self.policy.document.spec.mode,
                "x-heedful-also": ",".join(rule.name for rule in self.early_rules),
                "x-heedful-holdback": holdback_name(self.holdback)}

    def headers(self) -> dict[str, str]:
        if self.held.tool_call or self.decision is None:
            return {"x-heedful-request-id": self.request_id, "x-heedful-outcome": "skipped_tool_call"}
        headers = decision_headers(self.decision, self.request_id)
        headers["x-heedful-holdback"] = holdback_name(self.holdback)
        return headers

    async def decide(self) -> None:
        """Read until the holdback is satisfied, scoring settled windows as sentences end, then let the guard decide."""
        assert self._upstream is not None, "start() first"
        try:
            await self._hold()
        except UpstreamFailure:
            self.prepared.cancel()
            raise
        finally:
            await self._reader_done()
        self._waited_upstream = time.perf_counter() - self.started
        self.svc.metrics.upstream_seconds.observe(self._waited_upstream)
        if self.held.ended and not self.held.chunks and self.choice is not None:
            self.absent = True
            return
        if self.held.tool_call:
            self.prepared.cancel()
            await record_skip(self.svc, self.request_id, self.facts, "tool_call", self.choice)
            return
        decision = await self.svc.guard.decide(self.policy, self.chat, self.facts, self.messages, self.prepared,
                                               self.held.text, self.authorization, self.window_cache, self.allowance)
        self.decision = replace(decision, upstream_seconds=self._waited_upstream)

    async def chunks(self) -> AsyncIterator[dict[str, Any] | UpstreamFailure]:
        """What the client gets, as OpenAI chunks (an UpstreamFailure in the stream's place if it breaks). Text already
        sent early is not sent again. `finish()` records the audit afterwards."""
        assert self._upstream is not None and (self.decision is not None or self.held.tool_call or self.absent), \
            "decide() first"
        template = self.held.chunks[0] if self.held.chunks else {}
        model = self.chat.model
        sent = self.sent_early
        decision = self.decision
        if decision is None:  # a tool call: everything passes through untouched
            async for chunk in self._rest():
                yield chunk
            return
        added = time.perf_counter() - self.started - self._waited_upstream
        if decision.prefix + self.held.text + decision.suffix != decision.text:
            await self._close_upstream()
            text = decision.text[len(sent):] if sent and decision.text.startswith(sent) else decision.text
            for index, piece in enumerate(_PIECE.findall(text)):
                first = index == 0 and not sent
                yield chunk_like(template, model, {"role": "assistant", "content": piece} if first else {"content": piece})
            yield chunk_like(template, model, {}, "stop")
            usage = next((c for c in self.held.chunks if c.get("usage") and not c.get("choices")), None)
            if usage is not None:  # the token count of the draft the upstream wrote (repairs are counted upstream)
                yield usage
            self._audit = (None, added)
            return
        if decision.prefix and decision.prefix != sent:
            prefix = decision.prefix[len(sent):] if decision.prefix.startswith(sent) else decision.prefix
            yield chunk_like(template, model, {"role": "assistant", "content": prefix})
        full: list[str] = []
        suffix = decision.suffix
        async for chunk in self._rest():
            if isinstance(chunk, UpstreamFailure):
                yield chunk
                return
            full.append(delta_of(chunk).get("content") or "")
            if suffix and any(c.get("finish_reason") for c in chunk.get("choices") or []):
                yield chunk_like(template, model, {"content": suffix})
                suffix = ""
            yield chunk
        if suffix:
            yield chunk_like(template, model, {"content": suffix})
        self._audit = ("".join(full), added)

    async def finish(self, cut: str | None = None) -> None:
        """The audit record of what was sent (the whole released reply scored where it went past the holdback). A
        stream cut before its end (the client left, the upstream broke) is recorded too, with why it was cut."""
        if self.decision is None:
            return
        if self._audit is not None:
            released, added = self._audit
        elif cut is not None:
            released, added = None, time.perf_counter() - self.started - self._waited_upstream
        else:
            return
        extra = ({"cut": cut} if cut else {}) | ({"choice": self.choice} if self.choice is not None else {})
        if released is None:
            await record_decision(self.svc, self.decision, self.facts, self.request_id, self.messages,
                                  bool(self.chat.stream), added, extra)
        else:
            await self._audit_whole(released, added, extra)

    async def _rest(self) -> AsyncIterator[dict[str, Any] | UpstreamFailure]:
        """The held chunks, then the rest of the upstream stream."""
        assert self._upstream is not None
        for chunk in self.held.chunks:
            yield chunk
        if self.held.ended:
            return
        try:
            async for chunk in self._upstream:
                yield chunk
        except UpstreamFailure as error:
            self.svc.metrics.count_upstream_failure(error.status)
            yield error

    async def _hold(self) -> None:
        assert self._upstream is not None
        held = self.held
        while True:
            try:
                chunk = await self._upstream.__anext__()
            except StopAsyncIteration:
                held.ended = True
                return
            held.chunks.append(chunk)
            delta = delta_of(chunk)
            if delta.get("tool_calls") or delta.get("function_call"):
                held.tool_call = True
                return
            piece = delta.get("content") or ""
            held.text += piece
            if piece.rstrip(" ").endswith(_READ_AHEAD_ENDS):
                self._read_ahead()
            # Counted only when a sentence can have ended: recounting a long reply on every piece is quadratic (a
            # reply with no sentence end would be rescanned up to the byte cap, past the upstream deadline).
            if (not self.holdback.whole and self.holdback.sentences and _MAY_END_SENTENCE.search(piece)
                    and sentences_in(held.text) >= self.holdback.sentences):
                return

    def _read_ahead(self) -> None:
        """Score the windows that can no longer change, one read-ahead at a time. A sentence end that comes while the
        reader is busy is not dropped: the reader goes again on the newest text when it is done, so the last sentence
        end of a reply is always read ahead."""
        if self.svc.scoring.scorer.reply_needs_context:  # its reply pass reads the head only: nothing to read ahead
            return
        self._read_again = True
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_while_written())

    async def _read_while_written(self) -> None:
        while self._read_again:
            self._read_again = False
            text = self.held.text

            def still_latest() -> bool:  # asked in the scoring thread; the guess it allows is marked for _reader_done
                if self.held.text != text:
                    return False
                self._guessing = text
                return True

            try:
                await self.svc.scoring.read_ahead(self.view, text, self.window_cache, still_latest)
            finally:
                self._guessing = None

    async def _reader_done(self) -> None:
        """Wait for the reader's windows before the decision, except a guess at a last window that more text has
        overtaken: it is of no use, so the decision does not wait for it (it finishes on the other core)."""
        self._read_again = False
        reading = self._reading
        if reading is None:
            return
        if self._guessing is not None and self._guessing != self.held.text:
            reading.add_done_callback(lambda task: task.cancelled() or task.exception())  # nobody awaits it
            return
        try:
            await reading
        except Exception:  # noqa: BLE001 - reading ahead only saves time; the guard scores the whole draft
            self.window_cache.clear()

    async def _close_upstream(self) -> None:
        close = getattr(self._upstream, "aclose", None)
        if close is not None:
            await close()

    async def aclose(self) -> None:
        """Release the upstream connection whatever happened (a client that left, an error): breaking out of a stream
        does not close it by itself."""
        await self._close_upstream()

    async def _audit_whole(self, text: str, added: float, extra: dict[str, Any]) -> None:
        """The reply went out as the upstream wrote it past the holdback: score all of it for the audit record."""
        decision = self.decision
        assert decision is not None
        if text != self.held.text:
            try:
                context = await self.prepared
                scores = (await self.svc.scoring.score(self.messages, context, [text], self.window_cache))[0]
                decision = replace(decision, whole_reply_scores=scores.reply, whole_reply_flags=tuple(scores.flags))
            except Exception as exc:  # the reply is delivered; a failed audit score is recorded, not raised
                self.svc.metrics.failures.labels("scoring_error").inc()
                decision = replace(decision, whole_reply_error=str(exc))
        sent = decision.prefix + text + decision.suffix if decision.would_return is None else decision.text
        decision = replace(decision, draft=text, text=sent)
        await record_decision(self.svc, decision, self.facts, self.request_id, self.messages, bool(self.chat.stream), added,
                              extra)

    async def _early_rules(self) -> tuple[Rule, ...]:
        """The leading continuing prepend rules (crisis resources) that hold on the context alone, once it is scored. The
        context pass runs while the model starts writing, so this rarely waits; on a scoring fault nothing is sent
        early and the guard's failure mode decides later."""
        if not any(rule.continue_ for rule in self.policy.document.spec.rules[:1]):
            return ()
        try:
            timeout = self.policy.document.spec.limits.scoring_timeout_ms / 1000
            context = await asyncio.wait_for(asyncio.shield(self.prepared), timeout)
            zero = dict.fromkeys(REPLY_SCORES, 0.0)
            values = policy_values(Scores(zero, dict(context.signals)), self.svc.scoring.thresholds, self.facts, 0)
            return leading_prefix_rules(self.policy, values)
        except Exception:  # noqa: BLE001 - the normal path records the fault under the policy's failure mode
            return ()


_NOT_PLAIN_TEXT = ("tools", "functions", "tool_choice", "function_call", "logprobs", "top_logprobs", "audio", "modalities",
                   "prediction")


def plain_text(chat: ChatCompletionRequest) -> bool:
    """A JSON request the pipeline can answer from an upstream stream: one choice, no tools, logprobs or audio."""
    extras = chat.model_extra or {}
    return (chat.n or 1) == 1 and not any(extras.get(name) for name in _NOT_PLAIN_TEXT)


def holdback_name(holdback: Holdback) -> str:
    return "whole" if holdback.whole else f"{holdback.sentences} sentences"


async def collect(chunks: AsyncIterator[dict[str, Any] | UpstreamFailure]) -> dict[str, Any]:
    """A stream of chunks as one `chat.completion` (a JSON client's view of the same pipeline)."""
    parts: list[str] = []
    tool_calls: dict[int, dict[str, Any]] = {}
    first: dict[str, Any] = {}
    finish: str | None = None
    usage: Any = None
    async for chunk in chunks:
        if isinstance(chunk, UpstreamFailure):
            raise chunk
        first = first or chunk
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            parts.append(delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                _merge_tool_call(tool_calls, call)
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(parts)}
    if tool_calls:
        message = {"role": "assistant", "content": message["content"] or None,
                   "tool_calls": [tool_calls[i] for i in sorted(tool_calls)]}
    completion: dict[str, Any] = {
        "id": first.get("id", "chatcmpl-heedful"), "object": "chat.completion",
        "created": first.get("created", int(time.time())), "model": first.get("model", ""),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish or "stop"}]}
    if first.get("system_fingerprint"):
        completion["system_fingerprint"] = first["system_fingerprint"]
    if usage is not None:
        completion["usage"] = usage
    return completion


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    """Streamed tool calls arrive in pieces keyed by index: the id, type and name once, the arguments in fragments."""
    index = int(delta.get("index", 0))
    call = calls.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    call["id"] = delta.get("id") or call["id"]
    call["type"] = delta.get("type") or call["type"]
    function = delta.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


async def guarded_json_choices(svc: Services, policy: LoadedPolicy, chat: ChatCompletionRequest,
                               messages: list[dict[str, Any]], facts: RequestFacts, prepared: asyncio.Task[PreparedContext],
                               authorization: str | None, request_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Requests the upstream answers only as JSON (several choices, tools, logprobs): every text choice is judged."""
    started = time.perf_counter()
    try:
        response = await svc.upstream.chat(chat.upstream_body(), authorization)
    except UpstreamFailure:
        prepared.cancel()
        raise
    upstream_seconds = time.perf_counter() - started
    svc.metrics.upstream_seconds.observe(upstream_seconds)
    headers: dict[str, str] = {"x-heedful-request-id": request_id}
    allowance = RepairAllowance(policy.document.spec.limits.max_attempts)
    outcomes: list[str] = []
    for index, choice in enumerate(response.get("choices") or []):
        draft = choice_text(choice)
        if draft is None:
            outcomes.append("skipped_tool_call")
            headers.setdefault("x-heedful-outcome", "skipped_tool_call")
            await record_skip(svc, request_id, facts, "tool_call", index if len(response["choices"]) > 1 else None)
            continue
        decision = replace(await svc.guard.decide(policy, chat, facts, messages, prepared, draft, authorization,
                                                  allowance=allowance), upstream_seconds=upstream_seconds)
        if decision.text != draft:
            choice["message"]["content"] = decision.text
        annotate(choice, decision)
        outcomes.append(decision.outcome)
        if index == 0:
            headers = decision_headers(decision, request_id)
        added = time.perf_counter() - started - upstream_seconds
        await record_decision(svc, decision, facts, request_id, messages, False, added,
                              {"choice": index} if len(response["choices"]) > 1 else None)
    if not prepared.done():
        prepared.cancel()
    if len(outcomes) > 1:
        headers["x-heedful-choice-outcomes"] = ",".join(outcomes)
    return response, headers


def annotate(choice: dict[str, Any], decision: Decision) -> None:
    """Annotations ride in an extension field of the choice (clients that do not know it ignore it) and the headers."""
    if decision.action == "annotate" and decision.scores is not None:
        choice["heedful"] = {"rule": decision.rule, "scores": {k: round(v, 4) for k, v in decision.scores.reply.items()},
                             "context": {k: round(v, 4) for k, v in decision.scores.context.items()}}
