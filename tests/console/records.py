"""Audit records shaped as app/audit.py writes them, for database tests and the benchmark."""

from __future__ import annotations

import random
from typing import Any

RULES = (("none", "allow", "passed"), ("pacification", "regenerate", "repaired"),
         ("rushed-advice", "rewrite", "repaired"), ("crisis-resources", "prepend", "prepended"),
         ("sycophancy", "regenerate", "exhausted_best"))


def audit_record(index: int, ts: float, rng: random.Random | None = None, texts: bool = True,
                 policy: str = "default", tenant: str = "default", rule: tuple[str, str, str] | None = None,
                 flags: list[str] | None = None, mode: str = "enforce") -> dict[str, Any]:
    rng = rng or random.Random(index)
    name, action, outcome = rule or RULES[index % len(RULES)]
    scores = {"pacification": rng.random(), "sycophancy_epistemic": rng.random() / 2, "sycophancy_social": rng.random() / 3,
              "rushed_advice": rng.random(), "sycophancy": rng.random() / 2}
    context = {"distress": rng.random(), "crisis": rng.random() / 10, "advice_requested": rng.random()}
    if flags is None:
        flags = [k for k in ("pacification", "rushed_advice") if scores[k] >= 0.5]
    record: dict[str, Any] = {
        "ts": ts, "request_id": f"req-{index:07d}", "policy": policy, "policy_version": "2", "policy_revision": "abc123",
        "mode": mode, "model": "gpt-test", "tenant": tenant, "stream": False, "rule": name, "action": action,
        "outcome": outcome, "attempts": 1 if action in ("regenerate", "rewrite") else 0, "scores": scores,
        "context": context, "failure": None, "latency_ms": {"guard": 12.0, "upstream": 300.0},
        "changed": action != "allow", "escalated": False, "flags": flags, "sample_rate": 1.0,
    }
    if texts:
        draft = f"Don't worry, it will be fine (draft {index})."
        record["messages"] = [{"role": "user", "content": f"I'm scared about my results, case {index}."}]
        record["reply"] = draft
        record["returned"] = draft if action == "allow" else f"That sounds frightening (case {index}). What worries you most?"
        if mode == "shadow" and action != "allow":
            record["returned"] = draft
            record["would_return"] = f"That sounds frightening (case {index})."
    return record
