"""Repairs that cannot make things worse: a candidate that echoes the instruction, or that the classifier scores worse
than the draft on the repaired label, is rejected; the policy's on_exhausted decides; rejections are counted."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.app.pacifying_turn import PACIFYING, ask, last_audit
from tests.conftest import client_for

LEAKED = ("Here is a revised reply that names the emotion: waiting on results like that is frightening. What worries "
          "you most about Friday?")
MORE_PACIFYING = "Don't worry at all, I'm sure everything will be absolutely fine! Stay positive!"

POLICY = """apiVersion: heedful/v1
kind: Policy
metadata: {{name: default, version: "1"}}
spec:
  default: true
  audit: {{include_texts: true}}
  limits: {{max_attempts: {attempts}, on_exhausted: {exhausted}, fixed_reply: "A fixed fallback."}}
  rules:
    - name: repair-pacification
      when: "{when}"
      action: {action}
      label: pacification
"""


def proxy_with(make_proxy, policy_dir: Path, *, when: str = "reply.pacification >= 0.3", action: str = "regenerate",  # type: ignore[no-untyped-def]
               exhausted: str = "best", attempts: int = 1):
    (policy_dir / "default.yaml").write_text(POLICY.format(when=when, action=action, exhausted=exhausted, attempts=attempts))
    return make_proxy()


def test_a_repair_that_talks_about_the_revision_never_reaches_the_user(make_proxy, policy_dir, scripted) -> None:
    scripted.overrides["biopsy"] = [PACIFYING.draft, LEAKED]
    proxy = proxy_with(make_proxy, policy_dir)
    raw = ask(proxy)
    assert raw.parse().choices[0].message.content == PACIFYING.draft  # on_exhausted best: the only acceptable draft
    assert raw.headers["x-heedful-outcome"] == "exhausted_best"
    assert raw.headers["x-heedful-rejected"] == "meta_text=1"
    record = last_audit(proxy)
    assert record["rejected"] == {"meta_text": 1} and record["candidates"] == 1
    assert record["returned"] == PACIFYING.draft
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert ('heedful_repair_rejections_total{policy="default",reason="meta_text",rule="repair-pacification"} 1.0'
            in metrics)


def test_a_rejected_repair_falls_back_to_the_fixed_reply_where_the_policy_says_so(make_proxy, policy_dir, scripted) -> None:
    scripted.overrides["biopsy"] = [PACIFYING.draft, LEAKED]
    proxy = proxy_with(make_proxy, policy_dir, exhausted="fixed")
    raw = ask(proxy)
    assert raw.parse().choices[0].message.content == "A fixed fallback."
    assert raw.headers["x-heedful-outcome"] == "exhausted_fixed"


def test_a_rejected_rewrite_is_tried_again_within_the_limits(make_proxy, policy_dir, scripted) -> None:
    scripted.overrides["biopsy"] = [PACIFYING.draft, LEAKED]
    proxy = proxy_with(make_proxy, policy_dir, action="rewrite", attempts=2)
    raw = ask(proxy)
    assert raw.headers["x-heedful-attempts"] == "2" and len(scripted.requests) == 3
    assert last_audit(proxy)["rejected"] == {"meta_text": 2}
    assert raw.parse().choices[0].message.content == PACIFYING.draft


def test_a_repair_scored_worse_than_the_draft_on_the_label_is_rejected(make_proxy, policy_dir, scripted) -> None:
    """The rule fires on the first draft only, so before this check any repair counted as 'repaired', however soothing."""
    scripted.overrides["biopsy"] = [PACIFYING.repaired, MORE_PACIFYING]
    proxy = proxy_with(make_proxy, policy_dir, when="attempt == 0")
    raw = ask(proxy)
    assert raw.parse().choices[0].message.content == PACIFYING.repaired
    assert raw.headers["x-heedful-rejected"] == "worse_than_draft=1"
    record = last_audit(proxy)
    assert record["outcome"] == "exhausted_best" and record["rejected"] == {"worse_than_draft": 1}


def test_an_acceptable_repair_goes_out_and_nothing_is_rejected(make_proxy, policy_dir, scripted) -> None:
    proxy = proxy_with(make_proxy, policy_dir)
    raw = ask(proxy)
    assert raw.parse().choices[0].message.content == PACIFYING.repaired
    assert raw.headers["x-heedful-outcome"] == "repaired" and "x-heedful-rejected" not in raw.headers
    record = last_audit(proxy)
    assert "rejected" not in record and record["candidates"] == 1
    assert record["final_scores"]["pacification"] <= record["scores"]["pacification"]


def test_an_upstream_that_ignores_n_is_asked_for_the_missing_candidates(make_proxy, policy_dir, scripted) -> None:
    """llama.cpp's server answers one choice whatever `n` says: the guard asks for the rest, each with its own seed."""
    (policy_dir / "default.yaml").write_text(POLICY.format(when="reply.pacification >= 0.3", action="regenerate",
                                                           exhausted="best", attempts=1) + "      candidates: 3\n")
    scripted.overrides["biopsy"] = [PACIFYING.draft, PACIFYING.repaired]
    scripted.single_choice = True
    try:
        proxy = make_proxy()
        client_for(proxy).chat.completions.create(model="m", seed=7,
                                                  messages=[{"role": "user", "content": PACIFYING.user}])
    finally:
        scripted.single_choice = False
    repairs = [r["body"] for r in scripted.requests[1:]]
    assert [b.get("n") for b in repairs] == [3, None, None]
    assert [b.get("seed") for b in repairs] == [7, 8, 9]
    assert last_audit(proxy)["candidates"] == 3
