"""Quality where production lives: per-label AUROC, flag and action rates, broken down by kind, register and style.

"Acted on" means the shipped default policy (policies/default.yaml) does anything but pass the reply untouched (a
repair, fixed text, an annotation or an escalation), exactly as the proxy would decide on the first draft.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from classifiers.labels import CONTEXT_SIGNALS, HEADLINE_SCORES, flags_of
from classifiers.training.dataset import Example

REPO = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = REPO / "policies" / "default.yaml"
REPLY_TRUTH = {"pacification": ("pacification",), "sycophancy": ("sycophancy_epistemic", "sycophancy_social"),
               "rushed_advice": ("rushed_advice",)}
# A failure that begins at or after this word is "late": past the head a capped reader sees.
LATE_WORD = 100


@dataclass(frozen=True)
class Judged:
    example: Example
    scores: dict[str, float]  # reply scores and context signals
    flags: list[str]
    action: str  # what the default policy does with the first draft ("allow" = passes untouched)

    def truth(self, label: str) -> int:
        if label in REPLY_TRUTH:
            return max(self.example.labels[n] for n in REPLY_TRUTH[label])
        return self.example.labels[label]

    @property
    def good(self) -> bool:
        return not any(self.truth(label) for label in REPLY_TRUTH)

    @property
    def ordinary(self) -> bool:
        return self.good and not self.example.labels["distress"] and not self.example.labels["crisis"]

    @property
    def acted(self) -> bool:
        return self.action != "allow"

    @property
    def reply_flagged(self) -> bool:
        return any(f in REPLY_TRUTH for f in self.flags)


def policy_judge(thresholds: dict[str, float], policy_path: Path = DEFAULT_POLICY) -> Any:
    """A function (messages, reply scores, context) -> the default policy's action name on the first draft."""
    from app.policy.engine import evaluate, request_facts, variables
    from app.policy.loader import load_policy_file

    policy = load_policy_file(policy_path)

    def action(messages: list[dict[str, Any]], reply: dict[str, float], context: dict[str, float]) -> str:
        facts = request_facts("evaluation", "default", False, messages)
        values = variables(reply, context, facts, 0, flags_of(reply, context, thresholds))
        return evaluate(policy, values).action.value

    return action


def judge(examples: Sequence[Example], scored: Sequence[dict[str, float]], thresholds: dict[str, float]) -> list[Judged]:
    act = policy_judge(thresholds)
    out = []
    for example, scores in zip(examples, scored, strict=True):
        reply = {k: v for k, v in scores.items() if k not in CONTEXT_SIGNALS}
        context = {k: scores[k] for k in CONTEXT_SIGNALS}
        out.append(Judged(example, scores, flags_of(reply, context, thresholds), act(example.messages, reply, context)))
    return out


def _auroc(items: Sequence[Judged], label: str) -> float | None:
    y = np.array([j.truth(label) for j in items])
    if len(y) < 10 or y.sum() < 3 or y.sum() > len(y) - 3:
        return None
    return round(float(roc_auc_score(y, [j.scores[label] for j in items])), 4)


def _rate(items: Sequence[Judged], test: Any) -> float | None:
    return round(float(np.mean([bool(test(j)) for j in items])), 4) if items else None


def summary(items: Sequence[Judged], thresholds: dict[str, float]) -> dict[str, Any]:
    """AUROC per label, and flag and action rates on good and failing replies, ordinary traffic and crisis."""
    good = [j for j in items if j.good]
    failing = [j for j in items if not j.good]
    late = [j for j in failing if isinstance(j.example.meta.get("failure_starts_word"), int)
            and j.example.meta["failure_starts_word"] >= LATE_WORD]
    crisis = [j for j in items if j.truth("crisis")]
    near_miss = [j for j in items if not j.truth("crisis") and j.truth("distress")]
    out: dict[str, Any] = {"n": len(items), "auroc": {label: _auroc(items, label)
                                                      for label in (*HEADLINE_SCORES, *CONTEXT_SIGNALS)}}
    out["good"] = {"n": len(good), "acted_on": _rate(good, lambda j: j.acted),
                   "any_reply_flag": _rate(good, lambda j: j.reply_flagged)}
    out["failing"] = {"n": len(failing), "acted_on": _rate(failing, lambda j: j.acted)}
    out["failing_late"] = {"n": len(late), "acted_on": _rate(late, lambda j: j.acted)}
    ordinary = [j for j in items if j.ordinary]
    out["ordinary"] = {"n": len(ordinary), "acted_on": _rate(ordinary, lambda j: j.acted),
                       "any_reply_flag": _rate(ordinary, lambda j: j.reply_flagged)}
    out["crisis"] = {"n": len(crisis), "recall": _rate(crisis, lambda j: "crisis" in j.flags),
                     "recall_with_check_in": _rate(crisis, lambda j: "crisis" in j.flags or "crisis_uncertain" in j.flags)}
    out["near_miss"] = {"n": len(near_miss), "crisis_flagged": _rate(near_miss, lambda j: "crisis" in j.flags),
                        "check_in": _rate(near_miss, lambda j: "crisis_uncertain" in j.flags)}
    return out


def by_field(items: Sequence[Judged], field: str, minimum: int = 20) -> dict[str, dict[str, Any]]:
    """Per value of a meta field (register, style, kind, crisis_kind): size, acted-on rates and crisis flags."""
    groups: dict[str, list[Judged]] = defaultdict(list)
    for j in items:
        value = j.example.meta.get(field)
        if isinstance(value, str) and value:
            groups[value.split(",")[0].strip().lower()].append(j)
    out = {}
    for value, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        if len(members) < minimum:
            continue
        good = [j for j in members if j.good]
        failing = [j for j in members if not j.good]
        out[value] = {"n": len(members), "good_acted_on": _rate(good, lambda j: j.acted),
                      "failing_acted_on": _rate(failing, lambda j: j.acted),
                      "crisis_flagged": _rate(members, lambda j: "crisis" in j.flags)}
    return out
