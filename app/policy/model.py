"""The policy format (apiVersion heedful/v1, kind Policy), as pydantic models.

A policy is a list of rules evaluated in order; the first rule whose `when` holds decides the action. Limits bound how many
repair attempts and how much time a request may spend; when they run out, `on_exhausted` says what the user gets.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.policy.cel_env import TOP_LEVEL
from classifiers.labels import CORRECTIVE

# The `when` help an editor shows: every variable of the one CEL environment (app/policy/cel_env.py).
WHEN_HELP = "CEL condition over " + ", ".join(
    f"{owner}.{name}" if name else owner
    for owner, fields in TOP_LEVEL.items() for name in (fields or ("",))) + "."


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(str, Enum):  # noqa: UP042 - a str mixin keeps YAML and JSON values plain strings
    allow = "allow"
    annotate = "annotate"
    regenerate = "regenerate"
    rewrite = "rewrite"
    append = "append"
    prepend = "prepend"
    replace = "replace"  # type: ignore[assignment]  # the member shadows str.replace by design
    escalate = "escalate"


REPAIR_ACTIONS = frozenset({Action.regenerate, Action.rewrite})
# Actions that add to the reply without deciding its body: a rule with one of these may `continue` to later rules.
ADDITIVE_ACTIONS = frozenset({Action.prepend, Action.append, Action.annotate, Action.escalate})
TEXT_ACTIONS = frozenset({Action.append, Action.prepend, Action.replace})
CORRECTIVE_LABELS = CORRECTIVE
CorrectiveLabel = Literal["pacification", "sycophancy_epistemic", "sycophancy_social", "rushed_advice", "sycophancy", "crisis"]
# The Literal is what the JSON schema shows an editor; it must list exactly the registry's corrective labels.
assert set(get_args(CorrectiveLabel)) == set(CORRECTIVE), "CorrectiveLabel is out of step with classifiers.labels"


class Rule(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Unique within the policy; shows in headers, logs and audit.")
    description: str = ""
    when: str = Field(min_length=1, description=WHEN_HELP)
    action: Action
    label: CorrectiveLabel | None = Field(
        default=None, description="Which corrective instruction a regenerate/rewrite uses."
    )
    instruction: str | None = Field(default=None, description="Overrides the corrective instruction for this rule.")
    text: str | None = Field(default=None, description="The fixed text for append, prepend and replace.")
    candidates: int = Field(default=1, ge=1, le=8, description="Drafts asked for per regeneration (upstream `n`); the best is kept.")
    max_attempts: int | None = Field(default=None, ge=1, le=10, description="Repair attempts this rule may make per request.")
    time_budget_ms: int | None = Field(default=None, ge=100, le=600000,
                                       description="Wall time this rule's repairs may take per request (within the policy's).")
    continue_: bool = Field(default=False, alias="continue",
                            description="After this rule's additive action (prepend, append, annotate, escalate), keep "
                            "checking the later rules, so the body can still be repaired (crisis resources first, then a "
                            "repaired body).")

    @model_validator(mode="after")
    def _action_fields(self) -> Rule:
        if self.action in TEXT_ACTIONS and not self.text:
            raise ValueError(f"action {self.action.value!r} needs a non-empty 'text'")
        if self.continue_ and self.action not in ADDITIVE_ACTIONS:
            raise ValueError(f"'continue' only goes with an additive action (prepend, append, annotate, escalate), not "
                             f"{self.action.value!r}: that action decides the reply, so no later rule could apply")
        if self.action in REPAIR_ACTIONS and self.label is None and self.instruction is None:
            raise ValueError(f"action {self.action.value!r} needs a 'label' (for its corrective instruction) or an 'instruction'")
        return self


class Match(Strict):
    models: list[str] = Field(default_factory=list, description="Glob patterns of request models; empty matches any.")
    tenants: list[str] = Field(default_factory=list, description="Tenant names; empty matches any.")


class Holdback(Strict):
    sentences: int | None = Field(default=2, ge=1, le=20)
    whole: bool = False


class Limits(Strict):
    max_attempts: int = Field(default=2, ge=0, le=10, description="Repair attempts per request, all rules together.")
    time_budget_ms: int = Field(default=15000, ge=100, le=600000, description="Wall time repairs may add to a request.")
    on_exhausted: Literal["best", "original", "fixed"] = "best"
    fixed_reply: str | None = None
    regenerations_per_minute: int | None = Field(default=None, ge=0, description="Per-tenant cap on repair calls (they cost tokens).")
    scoring_timeout_ms: int = Field(default=1500, ge=10, le=60000)
    added_latency_budget_ms: int = Field(default=40, ge=1, description="Alerting budget for the guard's own added latency (p99).")

    @model_validator(mode="after")
    def _fixed(self) -> Limits:
        if self.on_exhausted == "fixed" and not self.fixed_reply:
            raise ValueError("on_exhausted 'fixed' needs a 'fixed_reply'")
        return self


class AuditSample(Strict):
    """Which share of decisions the audit stream keeps, so reviewers see repairs and a sample of passes alike. The rate of
    the decision's rule wins, then that of its outcome, then `default`; escalations are always kept."""

    default: float = Field(default=1.0, ge=0.0, le=1.0, description="Share kept where no rule or outcome rate applies.")
    rules: dict[str, float] = Field(default_factory=dict, description="Rule name -> share kept (0 to 1).")
    outcomes: dict[str, float] = Field(default_factory=dict,
                                       description="Outcome (passed, repaired, prepended, ...) -> share kept (0 to 1).")

    @field_validator("rules", "outcomes")
    @classmethod
    def _shares(cls, rates: dict[str, float]) -> dict[str, float]:
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"the share kept for {name!r} must be between 0 and 1, not {rate}")
        return rates

    def rate(self, rule: str, outcome: str) -> float:
        if rule in self.rules:
            return self.rules[rule]
        return self.outcomes.get(outcome, self.default)


class Audit(Strict):
    include_texts: bool = False
    sample: AuditSample = Field(default_factory=AuditSample)
    retention_days: float | None = Field(default=None, gt=0, description="How long a review console keeps this policy's "
                                         "decisions (texts included); unset: the console's own bound applies.")


class Metadata(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: str = "1"
    description: str = ""


class Spec(Strict):
    default: bool = Field(default=False, description="Used when no other policy matches the request.")
    match: Match = Field(default_factory=Match)
    mode: Literal["enforce", "shadow"] = "enforce"
    failure_mode: Literal["open", "closed"] = "open"
    failure_reply: str = "I'm sorry, I can't answer that right now. Please try again in a moment."
    streaming: Holdback = Field(default_factory=Holdback)
    limits: Limits = Field(default_factory=Limits)
    audit: Audit = Field(default_factory=Audit)
    instructions: dict[CorrectiveLabel, str] = Field(
        default_factory=dict
    )
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _sampled_rules_exist(self) -> Spec:
        # A misspelt rule name would silently fall back to the default share: say so instead.
        names = {rule.name for rule in self.rules} | {"none", "failure"}
        unknown = sorted(set(self.audit.sample.rules) - names)
        if unknown:
            raise ValueError(f"audit.sample.rules names {', '.join(map(repr, unknown))}, but this policy has no such rule "
                             f"(rules: {', '.join(sorted(names))})")
        return self

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return rules


class PolicyDocument(Strict):
    apiVersion: Literal["heedful/v1"]  # noqa: N815 - the wire name
    kind: Literal["Policy"]
    metadata: Metadata
    spec: Spec
    tests: list[dict[str, Any]] = Field(default_factory=list, description="Inline test cases (see `heedful policy test`).")
