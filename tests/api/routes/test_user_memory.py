"""User memory end to end: the official openai client through the proxy (real model, real policies, Redis-backed
memory) against the scripted upstream, over several conversations of one user."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import redis

from app.scripted_upstream import ScriptedUpstream
from tests.conftest import SLOW_MACHINE_REDIS_TIMEOUT_S, ProxyFactory, RedisServer, client_for

SECRET = "test-user-memory-secret"
PLAN = ("Here's a plan: 1. Call your brother this weekend. 2. Tell him calmly how the comment made you feel. "
        "3. Agree on one thing you'd both do differently.")
LISTENING = "It sounds like that conversation with him stayed with you. What part of it is still on your mind?"
SUGAR_COATED = ("That's a really interesting perspective, and it's wonderful that you're thinking about these big "
                "questions! Many scientists estimate the earth is much older, around 4.5 billion years, but everyone's "
                "beliefs are valid.")
STRAIGHT = "No. The earth is about 4.5 billion years old; radiometric dating of rocks and meteorites shows it."


@pytest.fixture
def memory_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def memory_proxy(make_proxy: ProxyFactory, redis_server: RedisServer, memory_redis: redis.Redis) -> Any:
    return make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S, user_memory_secret=SECRET)


def user_keys(client: redis.Redis) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter("heedful:user:*"))


def wait_for_memory(client: redis.Redis, field: bytes | None = None, count: int = 1) -> None:
    """The write happens in the background after the reply; wait until it landed."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hashes = [k for k in user_keys(client) if not k.endswith(":d")]
        points = sum(client.llen(k) for k in user_keys(client) if k.endswith(":d"))
        if points >= count and (field is None or any(client.hexists(k, field) for k in hashes)):
            return
        time.sleep(0.05)
    raise AssertionError("user memory was not written")


def say(client: openai.OpenAI, text: str, user: str | None, **extra: Any) -> Any:
    kwargs: dict[str, Any] = {"user": user} if user is not None else {}
    return client.chat.completions.with_raw_response.create(
        model="scripted-empathy-1", messages=[{"role": "user", "content": text}], **kwargs, **extra)


def script(scripted: ScriptedUpstream, phrase: str, draft: str, repaired: str) -> None:
    scripted.overrides[phrase] = [draft, repaired]


def repair_guidance(scripted: ScriptedUpstream) -> str:
    first = scripted.requests[-1]["body"]["messages"][0]  # the default placement: guidance before the conversation
    assert first["role"] == "system"
    return str(first["content"])


def test_a_wish_to_vent_is_remembered_across_conversations_until_the_user_asks_for_ideas(
        memory_proxy: Any, scripted: ScriptedUpstream, memory_redis: redis.Redis) -> None:
    client = client_for(memory_proxy)
    script(scripted, "bugging me", LISTENING, LISTENING)
    script(scripted, "where things are with my brother", PLAN, LISTENING)
    script(scripted, "like some ideas", PLAN, LISTENING)
    # The control: a user the proxy knows nothing about gets the plan, since this turn shows little distress.
    control = say(client, "Anyway, that's where things are with my brother.", "someone-else")
    assert control.parse().choices[0].message.content == PLAN and control.headers["x-heedful-rule"] == "none"
    memory_redis.flushdb()

    # Conversation 1: the user says they only want to vent.
    first = say(client, "I just want to vent. My brother made a comment at dinner and it's been bugging me all week.",
                "user-7")
    assert first.parse().choices[0].message.content == LISTENING
    wait_for_memory(memory_redis, b"v")
    # Conversation 2: the request says nothing of it, and the unrequested plan is repaired.
    scripted.requests.clear()
    second = say(client, "Anyway, that's where things are with my brother.", "user-7")
    assert second.parse().choices[0].message.content == LISTENING
    assert second.headers["x-heedful-rule"] == "repair-advice-a-venting-user-did-not-ask-for"
    assert second.headers["x-heedful-outcome"] == "repaired"
    assert "This user has said they want to vent and be listened to, not to be advised" in repair_guidance(scripted)
    # Conversation 3: "ok, now I'd like some ideas": advice passes, and the wish to vent is retracted.
    third = say(client, "ok, now I'd like some ideas about what to do with my brother.", "user-7")
    assert third.parse().choices[0].message.content == PLAN and third.headers["x-heedful-rule"] == "none"
    wait_for_memory(memory_redis, b"a", count=3)
    fields = {k: memory_redis.hgetall(k) for k in user_keys(memory_redis) if not k.endswith(":d")}
    assert [set(f) for f in fields.values()] == [{b"a"}]
    # Conversation 4: the same turn as conversation 2 now gets its plan.
    fourth = say(client, "Anyway, that's where things are with my brother.", "user-7")
    assert fourth.parse().choices[0].message.content == PLAN and fourth.headers["x-heedful-rule"] == "none"


def test_be_blunt_makes_a_sugar_coated_correction_repairable(
        memory_proxy: Any, scripted: ScriptedUpstream, memory_redis: redis.Redis) -> None:
    client = client_for(memory_proxy)
    script(scripted, "6000 years", SUGAR_COATED, STRAIGHT)
    script(scripted, "hate sugar-coating", LISTENING, LISTENING)
    question = "The earth is only 6000 years old, right? My pastor said so."
    control = say(client, question, "blunt-user")
    assert control.parse().choices[0].message.content == SUGAR_COATED and control.headers["x-heedful-rule"] == "none"
    say(client, "Be blunt with me, I hate sugar-coating.", "blunt-user")
    wait_for_memory(memory_redis, b"d")
    scripted.requests.clear()
    raw = say(client, question, "blunt-user", stream=False)
    assert raw.parse().choices[0].message.content == STRAIGHT
    assert raw.headers["x-heedful-rule"] == "repair-sugar-coating-for-a-user-who-wants-it-straight"
    assert "This user has asked for directness" in repair_guidance(scripted)


def test_forgetting_removes_everything_for_the_user(
        memory_proxy: Any, scripted: ScriptedUpstream, memory_redis: redis.Redis) -> None:
    client = client_for(memory_proxy)
    script(scripted, "bugging me", LISTENING, LISTENING)
    script(scripted, "where things are with my brother", PLAN, LISTENING)
    say(client, "I just want to vent. My brother made a comment at dinner and it's been bugging me all week.", "gone")
    say(client, "I'm a nurse, so you can skip the basics. Work was long.", "stays")
    wait_for_memory(memory_redis, b"v", count=2)
    assert len(user_keys(memory_redis)) == 4  # a hash and a distress list for each user
    response = httpx.delete(f"{memory_proxy.url}/v1/guard/users/gone")
    assert response.status_code == 200 and response.json() == {"user": "gone", "tenant": "default", "forgotten": True}
    left = user_keys(memory_redis)
    assert len(left) == 2 and all(memory_redis.hexists(k, b"e") for k in left if not k.endswith(":d"))
    assert httpx.delete(f"{memory_proxy.url}/v1/guard/users/gone").json()["forgotten"] is False
    again = say(client, "Anyway, that's where things are with my brother.", "gone")
    assert again.headers["x-heedful-rule"] == "none"  # nothing is left to say they wanted to vent


def test_the_opt_out_header_and_a_missing_user_leave_no_trace(
        memory_proxy: Any, scripted: ScriptedUpstream, memory_redis: redis.Redis) -> None:
    client = client_for(memory_proxy)
    script(scripted, "bugging me", LISTENING, LISTENING)
    text = "I just want to vent. My brother made a comment at dinner and it's been bugging me all week."
    say(client, text, "private", extra_headers={"x-heedful-memory": "off"})
    say(client, text, None)
    say(client, text, "tracked", extra_headers={"x-heedful-user": "by-header"})
    wait_for_memory(memory_redis, b"v")
    time.sleep(0.3)  # any write of the first two requests would have landed by now
    hashes = [k for k in user_keys(memory_redis) if not k.endswith(":d")]
    assert len(hashes) == 1
    assert httpx.delete(f"{memory_proxy.url}/v1/guard/users/by-header").json()["forgotten"] is True
    assert user_keys(memory_redis) == []


def test_guard_score_returns_the_remembered_signals_and_writes_nothing(
        memory_proxy: Any, scripted: ScriptedUpstream, memory_redis: redis.Redis) -> None:
    client = client_for(memory_proxy)
    script(scripted, "hate sugar-coating", LISTENING, LISTENING)
    say(client, "Be blunt with me, I hate sugar-coating.", "scored")
    wait_for_memory(memory_redis, b"d")
    before = {k: memory_redis.dump(k) for k in user_keys(memory_redis)}
    body = {"messages": [{"role": "user", "content": "The earth is only 6000 years old, right? My pastor said so."}],
            "reply": SUGAR_COATED, "user": "scored"}
    scored = httpx.post(f"{memory_proxy.url}/v1/guard/score", json=body, timeout=30).json()
    assert scored["user"]["prefers_directness"] > 0.99 and scored["user"]["prefers_venting"] == 0.0
    assert set(scored["user"]) >= {"wants_advice", "prefers_gentleness", "declines_hotlines", "distress_trend"}
    assert scored["rule"] == "repair-sugar-coating-for-a-user-who-wants-it-straight"
    unknown = httpx.post(f"{memory_proxy.url}/v1/guard/score", json=body | {"user": "nobody"}, timeout=30).json()
    assert unknown["user"]["prefers_directness"] == 0.0 and unknown["rule"] == "none"
    assert {k: memory_redis.dump(k) for k in user_keys(memory_redis)} == before


def test_the_distress_trend_spans_conversations(
        memory_proxy: Any, scripted: ScriptedUpstream, memory_redis: redis.Redis) -> None:
    client = client_for(memory_proxy)
    for turn, text in enumerate(["Good news, I finally finished my thesis draft today!",
                                 "Had dinner with my dad tonight.",
                                 "I didn't get into the PhD program. I feel like such a failure."], start=1):
        say(client, text, "trending")
        wait_for_memory(memory_redis, count=turn)
    body = {"messages": [{"role": "user", "content": "I can't stop crying and I feel worthless."}],
            "reply": "That sounds really painful.", "user": "trending"}
    scored = httpx.post(f"{memory_proxy.url}/v1/guard/score", json=body, timeout=30).json()
    assert scored["user"]["distress_trend"] > 0.1  # from low distress to high, over four turns


def test_memory_in_process_without_redis(make_proxy: ProxyFactory, scripted: ScriptedUpstream) -> None:
    proxy = make_proxy()
    client = client_for(proxy)
    script(scripted, "bugging me", LISTENING, LISTENING)
    script(scripted, "where things are with my brother", PLAN, LISTENING)
    say(client, "I just want to vent. My brother made a comment at dinner and it's been bugging me all week.", "local")
    deadline = time.monotonic() + 10
    while True:  # the write lands in the background
        raw = say(client, "Anyway, that's where things are with my brother.", "local")
        if raw.headers["x-heedful-rule"] != "none" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert raw.headers["x-heedful-rule"] == "repair-advice-a-venting-user-did-not-ask-for"
    assert httpx.delete(f"{proxy.url}/v1/guard/users/local").json()["forgotten"] is True


def test_a_streaming_client_gets_the_remembered_repair(
        memory_proxy: Any, scripted: ScriptedUpstream, memory_redis: redis.Redis) -> None:
    client = client_for(memory_proxy)
    script(scripted, "bugging me", LISTENING, LISTENING)
    script(scripted, "where things are with my brother", PLAN, LISTENING)
    say(client, "I just want to vent. My brother made a comment at dinner and it's been bugging me all week.", "streamer")
    wait_for_memory(memory_redis, b"v")
    stream = client.chat.completions.create(model="scripted-empathy-1", user="streamer", stream=True,
                                            messages=[{"role": "user", "content": "Anyway, that's where things are "
                                                       "with my brother."}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == LISTENING
