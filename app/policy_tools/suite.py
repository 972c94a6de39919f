"""Policy test cases: a conversation, a draft reply and what must happen, kept in the policy (`tests:`) or beside it
(`policies/<name>_test.yaml`). Loading reports every problem with its file, line and field, like the policy loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.policy.errors import PolicyError, PolicyProblem
from app.policy.loader import LoadedPolicy, dotted, line_for, line_map, load_policy_file, policy_files, schema_problems
from app.policy.model import Action
from app.policy.source import parse_yaml, read_text
from app.users.profile import UserView
from classifiers.inputs import ConversationError, view_of
from classifiers.labels import USER_PREFERENCES

NOTHING = "none"  # `rule: none` means no rule may fire
UserPreference = Literal[USER_PREFERENCES]  # type: ignore[valid-type]
Unit = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseRequest(_Strict):
    model: str | None = Field(default=None, description="Request model (default: one the policy matches).")
    tenant: str | None = Field(default=None, description="Tenant (default: the policy's first tenant).")
    stream: bool = False


class Expect(_Strict):
    rule: str | None = Field(default=None, description="The rule that must fire first; 'none' means no rule fires.")
    action: Action | None = Field(default=None, description="The action that must be taken ('allow' when nothing fires).")
    not_rules: list[str] = Field(default_factory=list, description="Rules that must not fire.")
    not_actions: list[Action] = Field(default_factory=list, description="Actions that must not be taken.")
    also: list[str] = Field(default_factory=list, description="Rules with `continue: true` that must also apply "
                            "(e.g. crisis resources before a repaired body).")

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if self.rule is None and self.action is None and not self.not_rules and not self.not_actions and not self.also:
            raise ValueError("expect needs at least one of 'rule', 'action', 'not_rules', 'not_actions', 'also'")
        return self


class Case(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    user: str | None = Field(default=None, description="Shorthand for a one-message conversation.")
    messages: list[dict[str, Any]] | None = Field(default=None, description="OpenAI chat messages ending with the user's.")
    reply: str = Field(description="The draft reply the policy judges.")
    request: CaseRequest = Field(default_factory=CaseRequest)
    attempt: int = Field(default=0, ge=0)
    remembered: dict[UserPreference, Unit] = Field(
        default_factory=dict, description="What user memory holds for this user (user.*, 0-1): e.g. "
        "{prefers_venting: 1} for a user who said earlier that they only want to vent.")
    remembered_distress: list[Unit] = Field(default_factory=list, description="The user's remembered distress per "
                                             "turn, oldest first (user.distress_trend adds this case's turn).")
    expect: Expect
    known_issue: str | None = Field(
        default=None, description="A known model error makes this case fail: it is reported as 'known' and does not fail "
        "the run, and it becomes a failure ('fixed?') once it passes, so the mark is removed when the model improves.")

    @model_validator(mode="after")
    def _conversation(self) -> Case:
        if (self.user is None) == (self.messages is None):
            raise ValueError("give the conversation as either 'user' (one message) or 'messages', not both or neither")
        try:
            view_of(self.conversation())
        except ConversationError as exc:
            raise ValueError(f"messages: {exc}") from exc
        return self

    def user_view(self) -> UserView:
        return UserView(dict(self.remembered), None, tuple(self.remembered_distress))

    def conversation(self) -> list[dict[str, Any]]:
        return list(self.messages) if self.messages is not None else [{"role": "user", "content": self.user}]


class SuiteFile(_Strict):
    policy: str | None = Field(default=None, description="The policy file these cases test, relative to this file.")
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class LocatedCase:
    case: Case
    file: str
    line: int
    field: str  # e.g. cases[3] or tests[0]


@dataclass
class Suite:
    policy: LoadedPolicy
    cases: list[LocatedCase] = field(default_factory=list)


def _schema_problems(exc: ValidationError, file: str, lines: dict[Any, int], prefix: tuple[Any, ...] = ()) -> list[PolicyProblem]:
    return schema_problems(exc, file, lines, "policy_test_error", prefix)


def _case(raw: Any, file: str, lines: dict[Any, int], where: tuple[Any, ...], problems: list[PolicyProblem]) -> LocatedCase | None:
    try:
        case = Case.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_schema_problems(exc, file, lines, where))
        return None
    return LocatedCase(case, file, line_for(lines, where), dotted(where))


def load_suite_file(path: Path, problems: list[PolicyProblem]) -> tuple[SuiteFile | None, list[LocatedCase]]:
    file = str(path)
    try:
        source = parse_yaml(read_text(path), file)
    except PolicyError as exc:
        problems.extend(exc.problems)
        return None, []
    node, data = source.node, source.data
    if node is None or not isinstance(data, dict):
        problems.append(PolicyProblem(file, 1, "policy_test_error", "", "expected a mapping with 'cases' (and optionally 'policy')"))
        return None, []
    lines: dict[Any, int] = {}
    line_map(node, (), lines, problems, file)
    header = {k: v for k, v in data.items() if k != "cases"}
    raw_cases = data.get("cases")
    try:
        suite = SuiteFile.model_validate({**header, "cases": [{"name": "-", "user": "-", "reply": "-", "expect": {"rule": "-"}}]})
    except ValidationError as exc:
        problems.extend(_schema_problems(exc, file, lines))
        suite = None
    if not isinstance(raw_cases, list) or not raw_cases:
        problems.append(PolicyProblem(file, line_for(lines, ("cases",)), "policy_test_error", "cases",
                                      "expected a non-empty list of test cases"))
        return suite, []
    located = [c for i, raw in enumerate(raw_cases) if (c := _case(raw, file, lines, ("cases", i), problems))]
    return suite, located


def suite_path_for(policy_path: Path) -> Path | None:
    for suffix in (".yaml", ".yml"):
        candidate = policy_path.with_name(f"{policy_path.stem}_test{suffix}")
        if candidate.is_file():
            return candidate
    return None


def _inline_cases(policy: LoadedPolicy, problems: list[PolicyProblem]) -> list[LocatedCase]:
    return [c for i, raw in enumerate(policy.document.tests)
            if (c := _case(raw, policy.file, policy.lines, ("tests", i), problems))]


def _check_names(suite: Suite, problems: list[PolicyProblem]) -> None:
    rules = [r.name for r in suite.policy.document.spec.rules]
    known = ", ".join(rules)
    seen: dict[str, LocatedCase] = {}
    for located in suite.cases:
        case = located.case
        if case.name in seen:
            problems.append(PolicyProblem(located.file, located.line, "policy_test_error", f"{located.field}.name",
                                          f"case name {case.name!r} is also used at {seen[case.name].file}:{seen[case.name].line}"))
        seen[case.name] = located
        names = [("rule", case.expect.rule)] + [(f"not_rules[{i}]", n) for i, n in enumerate(case.expect.not_rules)]
        for key, name in names:
            if name is not None and name != NOTHING and name not in rules:
                problems.append(PolicyProblem(located.file, located.line, "policy_test_error", f"{located.field}.expect.{key}",
                                              f"policy {suite.policy.name!r} has no rule {name!r}; its rules: {known}"))


def collect_suites(target: Path) -> tuple[list[Suite], list[PolicyProblem]]:
    """The policies under `target` (a directory, a policy file or a *_test.yaml file) with their cases; all problems."""
    problems: list[PolicyProblem] = []
    if target.is_dir():
        pairs = [(p, suite_path_for(p)) for p in policy_files(target)]
        claimed = {s for _, s in pairs if s}
        for orphan in sorted([*target.glob("*_test.yaml"), *target.glob("*_test.yml")]):
            if orphan not in claimed:
                problems.append(PolicyProblem(str(orphan), 1, "policy_test_error", "",
                                              f"no policy file beside it (expected {orphan.name.replace('_test', '')})"))
    elif target.is_file() and target.stem.endswith("_test"):
        pairs = [(target.with_name(target.stem.removesuffix("_test") + target.suffix), target)]
    elif target.is_file():
        pairs = [(target, suite_path_for(target))]
    else:
        return [], [PolicyProblem(str(target), 1, "policy_test_error", "", "no such file or directory")]
    suites: list[Suite] = []
    for policy_path, suite_path in pairs:
        located: list[LocatedCase] = []
        if suite_path is not None:
            header, located = load_suite_file(suite_path, problems)
            if header is not None and header.policy:
                policy_path = (suite_path.parent / header.policy)
        try:
            policy = load_policy_file(policy_path)
        except PolicyError as exc:
            problems.extend(exc.problems)
            continue
        suite = Suite(policy, _inline_cases(policy, problems) + located)
        _check_names(suite, problems)
        suites.append(suite)
    return suites, problems
