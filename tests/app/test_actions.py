"""Every policy action, through the real proxy: what the user gets and what the upstream was asked."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.app.pacifying_turn import PACIFYING, ask, last_audit


POLICY = """apiVersion: heedful/v1
kind: Policy
metadata: {{name: default, version: "9"}}
spec:
  default: true
  audit: {{include_texts: true}}
  limits: {{max_attempts: 1, on_exhausted: {exhausted}, fixed_reply: "A fixed fallback."}}
  rules:
    - name: only-rule
      when: "reply.pacification >= 0.0"
      action: {action}
{extra}
"""


def proxy_with(make_proxy, policy_dir: Path, action: str, extra: str = "", exhausted: str = "best"):  # type: ignore[no-untyped-def]
    (policy_dir / "default.yaml").write_text(POLICY.format(action=action, extra=extra, exhausted=exhausted))
    return make_proxy()


def test_append_adds_text_after_the_draft(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir, "append", '      text: "Support is available any time."')
    assert ask(proxy).parse().choices[0].message.content == PACIFYING.draft + "\n\nSupport is available any time."


def test_replace_sends_the_fixed_reply(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir, "replace", '      text: "Let us slow down. What feels most pressing?"')
    raw = ask(proxy)
    assert raw.parse().choices[0].message.content == "Let us slow down. What feels most pressing?"
    assert raw.headers["x-heedful-outcome"] == "replaced"


def guidance_sent(scripted) -> str:  # type: ignore[no-untyped-def]
    """The corrective guidance of the last repair call, wherever the placement put it."""
    return next(str(m["content"]) for m in scripted.requests[-1]["body"]["messages"] if m["role"] == "system")


def test_rewrite_asks_the_upstream_to_revise_the_draft(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir, "rewrite", "      label: pacification")
    raw = ask(proxy)
    ask_upstream = guidance_sent(scripted)
    # The default shows the draft as the assistant's own last turn and asks for it to be rewritten.
    assert "Rewrite your last reply" in ask_upstream
    assert scripted.requests[-1]["body"]["messages"][-1] == {"role": "assistant", "content": PACIFYING.draft}
    assert "Name the specific emotion" in ask_upstream  # the built-in corrective instruction for the label
    assert raw.headers["x-heedful-action"] == "rewrite"


def test_policy_instruction_overrides_the_built_in_one(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir, "regenerate", '      label: pacification\n      instruction: "Ask what the user fears most."')
    ask(proxy)
    assert "Ask what the user fears most." in guidance_sent(scripted)


def test_annotate_keeps_the_text_and_marks_the_response(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir, "annotate")
    body = httpx.post(f"{proxy.url}/v1/chat/completions", timeout=30,
                      json={"model": "m", "messages": [{"role": "user", "content": PACIFYING.user}]}).json()
    assert body["choices"][0]["message"]["content"] == PACIFYING.draft
    assert body["choices"][0]["heedful"]["rule"] == "only-rule"


def test_escalate_passes_and_records_for_review(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir, "escalate")
    raw = ask(proxy)
    assert raw.parse().choices[0].message.content == PACIFYING.draft
    record = last_audit(proxy)
    assert record["escalated"] is True and record["outcome"] == "escalated"
    assert record["reply"] == PACIFYING.draft  # texts are in the record because the policy enables them


def test_exhausted_fixed_reply(make_proxy, policy_dir, scripted) -> None:
    # The rule always fires, so the one allowed repair cannot satisfy it: the policy's fixed reply goes out.
    proxy = proxy_with(make_proxy, policy_dir, "regenerate", "      label: pacification", exhausted="fixed")
    raw = ask(proxy)
    assert raw.parse().choices[0].message.content == "A fixed fallback."
    assert raw.headers["x-heedful-outcome"] == "exhausted_fixed"


def test_exhausted_original(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir, "regenerate", "      label: pacification", exhausted="original")
    assert ask(proxy).parse().choices[0].message.content == PACIFYING.draft


def test_rule_time_budget_stops_slow_repairs(make_proxy, policy_dir) -> None:
    from app.config import Settings
    from app.local_server import LocalServer
    from app.main import create_app
    from app.scripted_upstream import ScriptedUpstream

    slow = ScriptedUpstream(latency_s=2.0)
    (policy_dir / "default.yaml").write_text(POLICY.format(
        action="regenerate", extra="      label: pacification\n      time_budget_ms: 300", exhausted="original"))
    with LocalServer(slow.app) as upstream:
        # The first draft is answered after 2 s too; only the repair is bounded by the rule's 300 ms.
        with LocalServer(create_app(Settings(upstream=f"{upstream.url}/v1", policies=policy_dir))) as proxy:
            raw = ask(proxy)
    assert raw.headers["x-heedful-outcome"] == "exhausted_original"
    assert raw.parse().choices[0].message.content == PACIFYING.draft
    assert last_audit(proxy)["repair_error"] == "time budget spent"
