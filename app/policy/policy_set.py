"""A validated set of policies and the choice of one for a request (by tenant, by model, else the default)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from app.policy.errors import PolicyError, PolicyProblem
from app.policy.loader import LoadedPolicy, load_policy_file, policy_files


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[LoadedPolicy, ...]

    @property
    def default(self) -> LoadedPolicy:
        return next(p for p in self.policies if p.document.spec.default)

    def select(self, model: str, tenant: str | None) -> LoadedPolicy:
        """The most specific match: tenant and model, then tenant, then model, then the default policy."""
        best: tuple[int, LoadedPolicy] | None = None
        for policy in self.policies:
            match = policy.document.spec.match
            if not match.models and not match.tenants:
                continue
            if match.tenants and (tenant is None or tenant not in match.tenants):
                continue
            if match.models and not any(fnmatchcase(model, pattern) for pattern in match.models):
                continue
            rank = 2 * bool(match.tenants) + bool(match.models)
            if best is None or rank > best[0]:
                best = (rank, policy)
        return best[1] if best else self.default

    def by_name(self, name: str) -> LoadedPolicy | None:
        return next((p for p in self.policies if p.name == name), None)


def load_policy_set(directory: Path) -> PolicySet:
    """Load every policy file in a directory; all problems in all files are reported together."""
    try:
        paths = policy_files(directory)
    except OSError as exc:  # missing, not a directory, unreadable, or swapped away while it was listed
        raise PolicyError([PolicyProblem(str(directory), 1, "policy_yaml_error", "",
                                         f"cannot list the policy directory: {exc.strerror or exc}")]) from exc
    problems: list[PolicyProblem] = []
    loaded: list[LoadedPolicy] = []
    for path in paths:
        try:
            loaded.append(load_policy_file(path))
        except PolicyError as exc:
            problems.extend(exc.problems)
    names: dict[str, LoadedPolicy] = {}
    for policy in loaded:
        if policy.name in names:
            problems.append(PolicyProblem(policy.file, policy.line_of("metadata", "name"), "policy_conflict", "metadata.name",
                                          f"name {policy.name!r} is also used by {names[policy.name].file}"))
        names[policy.name] = policy
    defaults = [p for p in loaded if p.document.spec.default]
    if not problems and len(defaults) != 1:
        what = "no policy sets" if not defaults else f"{len(defaults)} policies set"
        where = defaults[1] if len(defaults) > 1 else None
        problems.append(PolicyProblem(where.file if where else str(directory), where.line_of("spec", "default") if where else 1,
                                      "policy_conflict", "spec.default", f"{what} spec.default: true; exactly one must"))
    if problems:
        raise PolicyError(problems)
    return PolicySet(tuple(loaded))
