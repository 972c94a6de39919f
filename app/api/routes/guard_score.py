"""POST /v1/guard/score: scores and the policy's verdict for a draft, without calling any LLM."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.request_body import documented_body, documented_errors, parse, read_json, tenant_of
from app.errors import GuardError, InvalidRequest, error_response
from app.openai.protocol import GuardScoreRequest
from app.policy.engine import policy_values, request_facts
from app.policy_tools.outcome import effect_of
from app.services import services
from app.users.memory import recalled_view
from classifiers.inputs import ConversationError
from classifiers.labels import HEADLINE_SCORES, SUB_SCORES

router = APIRouter(tags=["guard"])


@router.post("/v1/guard/score", openapi_extra=documented_body(GuardScoreRequest), responses=documented_errors(400, 413))
async def score(request: Request) -> JSONResponse:
    svc = services(request)
    request_id = uuid.uuid4().hex
    try:
        body = parse(GuardScoreRequest, await read_json(request, svc.settings.max_body_bytes))
        messages = [m.model_dump(exclude_unset=True) for m in body.messages]
        tenant = tenant_of(request, svc.settings.tenant_header, svc.settings.tenant_keys,
                           svc.settings.trust_tenant_header)
        policy = svc.policies.active.by_name(body.policy) if body.policy else svc.policies.active.select(body.model, tenant)
        if policy is None:
            raise InvalidRequest(f"no policy named {body.policy!r}", param="policy", code="unknown_policy")
        # Memory is read while the draft is scored; the verdict waits for both.
        recall = asyncio.ensure_future(svc.users.recall(svc.users.identify(request.headers, body.user, tenant), messages))
        user = asyncio.ensure_future(recalled_view(recall))
        facts = request_facts(body.model, tenant, False, messages)
        try:
            judged = await svc.guard.judge(policy, facts, messages, body.reply, user)
        except ConversationError as exc:
            user.cancel()
            recall.cancel()
            raise InvalidRequest(str(exc), param="messages", code="invalid_value") from exc
        facts = replace(facts, user=await user)
    except GuardError as error:
        return error_response(error, {"x-heedful-request-id": request_id})
    spec = policy.document.spec
    described = {"name": policy.name, "version": policy.version, "revision": policy.revision, "mode": spec.mode}
    if isinstance(judged, str):
        # What a guarded completion would do on this failure: the policy's failure mode decides.
        closed = spec.failure_mode == "closed"
        return JSONResponse({"failure": judged, "policy": described, "rule": "failure",
                             "action": "replace" if closed else "allow",
                             "effect": spec.failure_reply if closed else "the draft goes to the user unchanged"},
                            headers={"x-heedful-request-id": request_id})
    scores, verdict = judged
    values = policy_values(scores, svc.scoring.thresholds, facts, 0)
    return JSONResponse({
        "scores": {k: scores.reply[k] for k in HEADLINE_SCORES},
        "sub_scores": {k: scores.reply[k] for k in SUB_SCORES},
        "context": scores.context,
        "user": values["user"],
        "flags": values["flags"],
        "thresholds": svc.scoring.thresholds,
        "policy": described,
        "rule": verdict.rule_name,
        "action": verdict.action.value,
        "also": [rule.name for rule in verdict.also],
        "effect": effect_of(policy, verdict, body.reply, facts.user).summary,
    }, headers={"x-heedful-request-id": request_id})
