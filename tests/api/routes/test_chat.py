"""The drop-in endpoint, driven by the official openai client against a real local upstream and the real model."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import httpx
import openai
import pytest

from app.scripted_upstream import SCENARIOS
from tests.conftest import client_for

SCENARIO = {s.name: s for s in SCENARIOS}


def ask(client: openai.OpenAI, text: str, **extra: object):  # type: ignore[no-untyped-def]
    return client.chat.completions.with_raw_response.create(
        model="scripted-empathy-1", messages=[{"role": "user", "content": text}], **extra)


@pytest.mark.parametrize("name", ["pacification", "sycophancy", "rushed_advice", pytest.param(
    "social_sycophancy", marks=pytest.mark.xfail(strict=True, reason="known model error (model card): this social "
                                                 "endorsement scores below the dev-chosen sycophancy threshold"))])
def test_flawed_draft_is_repaired_in_message_content(proxy, scripted, name: str) -> None:
    scenario = SCENARIO[name]
    raw = ask(client_for(proxy), scenario.user)
    completion = raw.parse()
    assert completion.choices[0].message.content == scenario.repaired
    assert raw.headers["x-heedful-action"] == "regenerate"
    assert raw.headers["x-heedful-outcome"] == "repaired"
    assert raw.headers["x-heedful-attempts"] == "1"
    # The guidance goes before the conversation (the default placement): the user's turn stays the last thing read.
    guidance, *conversation = scripted.requests[-1]["body"]["messages"]
    assert guidance["role"] == "system" and "Guidance for your next reply" in guidance["content"]
    assert conversation[-1] == {"role": "user", "content": scenario.user}


def test_engaged_reply_passes_untouched(proxy, scripted) -> None:
    scenario = SCENARIO["good"]
    raw = ask(client_for(proxy), scenario.user)
    assert raw.parse().choices[0].message.content == scenario.draft
    assert raw.headers["x-heedful-rule"] == "none"
    assert raw.headers["x-heedful-action"] == "allow"
    assert len(scripted.requests) == 1


def test_crisis_turn_gets_resources_first_and_is_never_rewritten(proxy, scripted) -> None:
    scenario = SCENARIO["crisis"]
    raw = ask(client_for(proxy), scenario.user)
    content = raw.parse().choices[0].message.content
    assert raw.headers["x-heedful-rule"] == "crisis-resources"
    assert content.startswith("If you are thinking about ending your life")
    assert content.endswith(scenario.draft)  # the draft, with its own resources, is kept whole and in order
    assert len(scripted.requests) == 1  # no regeneration on a crisis turn


def test_unused_fields_and_authorization_pass_through(proxy, scripted) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    ask(client_for(proxy, api_key="sk-client-secret"), SCENARIO["good"].user, temperature=0.3, seed=7, tools=tools,
        tool_choice="auto", response_format={"type": "text"}, user="u-42", metadata={"app": "t"}, logprobs=False)
    seen = scripted.requests[0]
    for key, value in {"temperature": 0.3, "seed": 7, "tools": tools, "tool_choice": "auto", "user": "u-42",
                       "response_format": {"type": "text"}, "metadata": {"app": "t"}, "logprobs": False}.items():
        assert seen["body"][key] == value
    assert seen["authorization"] == "Bearer sk-client-secret"


def test_deployment_key_replaces_client_authorization(make_proxy, scripted) -> None:
    proxy = make_proxy(upstream_api_key="sk-deployment")
    ask(client_for(proxy, api_key="sk-client"), SCENARIO["good"].user)
    assert scripted.requests[0]["authorization"] == "Bearer sk-deployment"


def test_tool_call_replies_are_not_touched(proxy, scripted) -> None:
    raw = client_for(proxy).chat.completions.with_raw_response.create(
        model="fault:tools", messages=[{"role": "user", "content": SCENARIO["pacification"].user}])
    message = raw.parse().choices[0].message
    assert message.tool_calls[0].function.name == "lookup"
    assert raw.headers["x-heedful-outcome"] == "skipped_tool_call"


def test_reply_after_a_tool_result_passes_through(proxy, scripted) -> None:
    messages = [{"role": "user", "content": "look it up"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                        "function": {"name": "lookup", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "result"}]
    raw = client_for(proxy).chat.completions.with_raw_response.create(model="m", messages=messages)
    assert raw.headers["x-heedful-outcome"] == "skipped_not_user_turn"


def test_candidates_ask_for_n_drafts_and_keep_the_best(make_proxy, policy_dir, scripted) -> None:
    text = (policy_dir / "default.yaml").read_text().replace("      label: pacification\n", "      label: pacification\n      candidates: 3\n")
    (policy_dir / "default.yaml").write_text(text)
    proxy = make_proxy()
    completion = ask(client_for(proxy), SCENARIO["pacification"].user).parse()
    assert completion.choices[0].message.content == SCENARIO["pacification"].repaired
    assert scripted.requests[-1]["body"]["n"] == 3


def test_streaming_repairs_a_flawed_opening(proxy, scripted) -> None:
    stream = client_for(proxy).chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": SCENARIO["rushed_advice"].user}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == SCENARIO["rushed_advice"].repaired
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_streaming_releases_a_good_reply_as_it_came(proxy, scripted) -> None:
    stream = client_for(proxy).chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": SCENARIO["good"].user}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == SCENARIO["good"].draft


def test_streaming_crisis_sends_resources_first(proxy, scripted) -> None:
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=30,
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": SCENARIO["crisis"].user}]}) as r:
        # The resources go out before the draft is read, so the decision headers are not known yet; the rule is.
        assert r.headers["x-heedful-also"] == "crisis-resources"
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert "If you are thinking about ending your life" in lines[0]
    assert lines[-1] == "data: [DONE]"


def test_crisis_resources_first_and_a_pacifying_body_is_repaired(proxy, scripted) -> None:
    raw = ask(client_for(proxy), SCENARIO["crisis_pacified"].user)
    reply = raw.parse().choices[0].message.content
    assert raw.headers["x-heedful-also"] == "crisis-resources"
    assert raw.headers["x-heedful-rule"] == "repair-pacification"
    assert raw.headers["x-heedful-outcome"] == "repaired"
    assert reply.startswith("If you are thinking about ending your life")
    assert reply.endswith(SCENARIO["crisis_pacified"].repaired)
    assert "Stay positive" not in reply


def test_streaming_crisis_resources_flush_before_the_body_is_repaired(proxy, scripted) -> None:
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=30, json={
            "model": "m", "stream": True, "messages": [{"role": "user", "content": SCENARIO["crisis_pacified"].user}]}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert "If you are thinking about ending your life" in lines[0]
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or "" for line in lines[:-1])
    assert text.count("If you are thinking about ending your life") == 1
    assert text.endswith(SCENARIO["crisis_pacified"].repaired) and "Stay positive" not in text


def test_stream_whole_reply_holdback(make_proxy, policy_dir, scripted) -> None:
    text = (policy_dir / "default.yaml").read_text().replace("    sentences: 2 ", "    whole: true\n    sentences: 2 ")
    (policy_dir / "default.yaml").write_text(text)
    proxy = make_proxy()
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=30,
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": SCENARIO["pacification"].user}]}) as r:
        assert r.headers["x-heedful-holdback"] == "whole"
        assert r.headers["x-heedful-outcome"] == "repaired"


def test_shadow_mode_returns_the_original_and_records_the_repair(make_proxy, policy_dir, scripted) -> None:
    text = (policy_dir / "default.yaml").read_text().replace("mode: enforce", "mode: shadow").replace(
        "include_texts: false", "include_texts: true")
    (policy_dir / "default.yaml").write_text(text)
    proxy = make_proxy()
    raw = ask(client_for(proxy), SCENARIO["pacification"].user)
    assert raw.parse().choices[0].message.content == SCENARIO["pacification"].draft
    assert raw.headers["x-heedful-shadow"] == "would-change"
    assert raw.headers["x-heedful-action"] == "regenerate"
    services = proxy_services(proxy)
    import asyncio

    record = asyncio.run(services.store.recent_audit(1))[0]
    assert record["would_return"] == SCENARIO["pacification"].repaired
    assert record["returned"] == SCENARIO["pacification"].draft


def proxy_services(server):  # type: ignore[no-untyped-def]
    return server._server.config.app.state.services


def test_failure_mode_open_and_closed(make_proxy, policy_dir, scripted) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("scorer exploded")

    proxy = make_proxy()
    proxy_services(proxy).scoring.scorer.reply_scores = broken
    raw = ask(client_for(proxy), SCENARIO["pacification"].user)
    assert raw.parse().choices[0].message.content == SCENARIO["pacification"].draft
    assert raw.headers["x-heedful-outcome"] == "failed_open"
    assert raw.headers["x-heedful-failure"] == "scoring_error"

    (policy_dir / "default.yaml").write_text((policy_dir / "default.yaml").read_text().replace("failure_mode: open", "failure_mode: closed"))
    closed = make_proxy()
    proxy_services(closed).scoring.scorer.reply_scores = broken
    raw = ask(client_for(closed), SCENARIO["pacification"].user)
    assert raw.headers["x-heedful-outcome"] == "failed_closed"
    assert "can't answer that right now" in raw.parse().choices[0].message.content
    metrics = httpx.get(f"{closed.url}/metrics").text
    assert 'heedful_guard_failures_total{kind="scoring_error"} 1.0' in metrics


def test_exhausted_attempts_fall_back_to_the_best_draft(make_proxy, policy_dir, scripted) -> None:
    flawed = SCENARIO["pacification"].draft
    scripted.overrides["biopsy"] = [flawed, "Don't worry at all, I'm sure everything will be absolutely fine!"]
    proxy = make_proxy()
    raw = ask(client_for(proxy), SCENARIO["pacification"].user)
    assert raw.headers["x-heedful-outcome"] == "exhausted_best"
    assert raw.headers["x-heedful-attempts"] == "2"
    assert len(scripted.requests) == 3


LATE_PLAN_USER = "my dad's funeral was on saturday and today i went back to work and just sat in my car in the parking lot"
LATE_PLAN_DRAFT = (
    "I'm so sorry about your dad. Going back to work only days after the funeral, and finding yourself unable to leave "
    "the car, says a lot about how much is still sitting on you. The parking lot can be the one place where nobody "
    "needs anything from you, and it makes sense that your body chose to stop there. Grief often arrives in waves like "
    "that, in ordinary places, when the structure of a normal day suddenly feels impossible to step back into. "
    "It sounds like part of you was expected to be back to normal already, and another part of you is nowhere near "
    "that, and the car is where those two met. "
    "Here's a plan to get you back on track this week:\n1. Ask HR about bereavement leave.\n2. Set three small goals "
    "each morning.\n3. Download a grief journaling app.\n4. Join a support group.\n5. Exercise for 30 minutes a day.\n"
    "6. Keep a regular sleep schedule.\n7. Limit caffeine and alcohol.\n8. Book a therapist this week.")
LATE_PLAN_REPAIRED = "Sitting in the car sounds like the only place today that didn't ask anything of you. What was it like to be back?"


def test_json_request_is_read_from_the_upstream_stream_and_a_late_failure_is_repaired(proxy, scripted) -> None:
    scripted.overrides["dad's funeral"] = (LATE_PLAN_DRAFT, LATE_PLAN_REPAIRED)
    raw = ask(client_for(proxy), LATE_PLAN_USER)
    completion = raw.parse()
    assert scripted.requests[0]["body"]["stream"] is True  # the draft was read while it was written
    assert raw.headers["x-heedful-rule"] == "repair-rushed-advice"
    assert completion.object == "chat.completion" and completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == LATE_PLAN_REPAIRED
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_a_json_request_asks_for_json_while_the_scorer_is_saturated(make_proxy, scripted) -> None:
    """With as many scoring calls in flight as threads, windows would queue anyway: the draft is read as one body."""
    proxy = make_proxy(scoring_threads=1)
    scoring = proxy_services(proxy).scoring
    real, entered, release = scoring.scorer.reply_scores, threading.Event(), threading.Event()

    def held_once(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if not entered.is_set():
            entered.set()
            assert release.wait(30)
        return real(*args, **kwargs)

    scoring.scorer.reply_scores = held_once
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(ask, client_for(proxy), "What should I pack for a weekend in Lisbon?")
        assert entered.wait(30)  # the first request's reply is being scored, on the only scoring thread
        assert scoring.saturated
        second = threading.Thread(target=ask, args=(client_for(proxy), "What is a good name for a grey cat?"))
        second.start()
        deadline = time.monotonic() + 30
        while len(scripted.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        second.join(30)
        assert first.result(30).parse().choices[0].message.content
    bodies = {r["body"]["messages"][-1]["content"]: r["body"]["stream"] for r in scripted.requests}
    assert bodies == {"What should I pack for a weekend in Lisbon?": True, "What is a good name for a grey cat?": False}
    assert not scoring.saturated


def test_stream_upstream_off_asks_for_json(make_proxy, scripted) -> None:
    proxy = make_proxy(stream_upstream=False)
    scripted.overrides["dad's funeral"] = (LATE_PLAN_DRAFT, LATE_PLAN_REPAIRED)
    ask(client_for(proxy), LATE_PLAN_USER)
    assert scripted.requests[0]["body"]["stream"] is False


@pytest.mark.parametrize("trailing", [
    {"role": "system", "content": "Answer in under 100 words."},
    {"role": "developer", "content": "Be concise."},
    {"role": "assistant", "content": ""},
])
def test_a_crisis_turn_is_judged_even_with_trailing_instructions(proxy, scripted, trailing) -> None:
    raw = client_for(proxy).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": SCENARIO["crisis"].user}, trailing])
    assert "crisis-resources" in (raw.headers.get("x-heedful-also", "") + raw.headers["x-heedful-rule"])
    assert raw.parse().choices[0].message.content.startswith("If you are thinking about ending your life")
    # The app's own trailing instruction still reaches the upstream.
    assert scripted.requests[0]["body"]["messages"][-1] == trailing


def test_every_skip_is_counted_and_audited(proxy, scripted) -> None:
    messages = [{"role": "user", "content": "look this up"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    raw = client_for(proxy).chat.completions.with_raw_response.create(model="m", messages=messages)
    assert raw.headers["x-heedful-outcome"] == "skipped_not_user_turn"
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert 'heedful_skipped_total{reason="not_user_turn"} 1.0' in metrics


@pytest.mark.parametrize("name", ["pacification", "crisis_pacified", "good"])
def test_a_json_client_gets_the_streamed_reply_collected(proxy, scripted, name: str) -> None:
    """One pipeline: the JSON completion is the same chunks a streaming client receives, collected."""
    user = SCENARIO[name].user
    as_json = ask(client_for(proxy), user).parse().choices[0].message.content
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=30,
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": user}]}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    streamed = "".join((json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or "" for line in lines)
    assert streamed == as_json
