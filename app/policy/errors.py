"""Policy problems as values that name the file, the line and the field, printed `file:line: code: field: message`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class PolicyProblem:
    file: str
    line: int
    code: str  # policy_yaml_error | policy_schema_error | policy_cel_error | policy_threshold_error | policy_unreachable_rule
    #           | policy_conflict | policy_test_error | policy_load_error (a fault while loading: the message says which)
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.file}:{self.line}: {self.code}: {where}{self.message}"


class PolicyError(Exception):
    """One or more problems with policy files; all are collected and sorted by location."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
