"""Rules that can never fire: evaluate every condition over a deterministic grid of variable values built from the
literals the conditions use (each numeric literal, and it +-0.001). A rule is unreachable when every grid point where it
holds is taken by an earlier rule, and never true when it holds on no point. A grid is a sample, not a proof: the
finding is reported as what the grid showed."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.policy.cel_env import FLAG_NAMES, probe_variables
from app.policy.loader import LoadedPolicy
from app.policy_tools.conditions import numeric_literals, references, string_literals

GRID_LIMIT = 60_000  # beyond this many points, a seeded sample of this size is drawn instead
_STEP = 0.001


@dataclass(frozen=True)
class Reachability:
    rule_index: int
    never_true: bool
    shadowed_by: tuple[str, ...]  # earlier rules that took every point where this one holds
    points: int


def _score_values(literals: list[float]) -> list[float]:
    values = {0.0, 1.0}
    for lit in literals:
        for v in (lit - _STEP, lit, lit + _STEP):
            if 0.0 <= v <= 1.0:
                values.add(round(v, 6))
    return sorted(values)


def _int_values(literals: list[float]) -> list[int]:
    values = {0, 1, 2, 3}
    for lit in literals:
        for v in (int(lit) - 1, int(lit), int(lit) + 1):
            if v >= 0:
                values.add(v)
    return sorted(values)


def _domains(sources: list[str]) -> dict[str, list[Any]]:
    names = set().union(*(references(s) for s in sources)) if sources else set()
    literals = [x for s in sources for x in numeric_literals(s)]
    strings = sorted({x for s in sources for x in string_literals(s)})
    domains: dict[str, list[Any]] = {}
    for name in sorted(names):
        if name == "user.distress_trend":  # a slope: negative is falling
            domains[name] = sorted({-1.0, 0.0, 1.0, *_score_values([x for x in literals if -1 <= x <= 1]),
                                    *(-v for v in _score_values([-x for x in literals if -1 <= x <= 0]))})
        elif name.startswith(("reply.", "context.", "user.")):
            domains[name] = _score_values([x for x in literals if 0 - _STEP <= x <= 1 + _STEP] or [0.5])
        elif name in ("attempt", "request.turns"):
            domains[name] = _int_values(literals)
        elif name == "request.stream":
            domains[name] = [False, True]
        elif name in ("request.model", "request.tenant"):
            domains[name] = [*strings, "other"]
        elif name == "flags":
            mentioned = [s for s in strings if s in FLAG_NAMES] or ["crisis"]
            subsets = itertools.chain.from_iterable(itertools.combinations(mentioned, k) for k in range(len(mentioned) + 1))
            domains[name] = [list(s) for s in subsets] if len(mentioned) <= 5 else [[], *([m] for m in mentioned), mentioned]
    return domains


def _points(domains: dict[str, list[Any]]) -> tuple[Iterator[dict[str, Any]], int]:
    names = list(domains)
    size = 1
    for values in domains.values():
        size *= len(values)
    if size <= GRID_LIMIT:
        combos: Iterator[tuple[Any, ...]] = itertools.product(*(domains[n] for n in names))
    else:
        rng = random.Random(20240601)
        combos = (tuple(rng.choice(domains[n]) for n in names) for _ in range(GRID_LIMIT))
        size = GRID_LIMIT

    def build() -> Iterator[dict[str, Any]]:
        for combo in combos:
            values = probe_variables(0.0)
            for name, value in zip(names, combo, strict=True):
                owner, _, field = name.partition(".")
                if field:
                    values[owner][field] = value
                else:
                    values[owner] = value
            yield values

    return build(), size


def _holds(condition: Any, values: dict[str, Any]) -> bool:
    try:
        return bool(condition.holds(values))
    except Exception:  # a type error on an odd grid point is "does not hold" there
        return False


def analyse(policy: LoadedPolicy) -> list[Reachability]:
    """The rules the grid never saw fire, each with the earlier rules that took its points."""
    conditions = list(policy.conditions)
    # A rule that continues (crisis resources, say) applies and lets later rules decide: it takes no point from them.
    continues = [rule.continue_ for rule in policy.document.spec.rules]
    domains = _domains([c.source for c in conditions])
    count = len(conditions)
    fires = [False] * count
    ever_true = [False] * count
    points, size = _points(domains)
    kept: list[dict[str, Any]] = []
    for values in points:
        first = None
        for j in range(count):
            if first is not None and ever_true[j]:
                continue
            if _holds(conditions[j], values):
                ever_true[j] = True
                if first is None:
                    fires[j] = True
                    if not continues[j]:
                        first = j
        if first is not None and len(kept) < GRID_LIMIT:
            kept.append(values)
        if all(fires):
            break
    found = []
    for j in range(count):
        if fires[j]:
            continue
        if not ever_true[j]:
            found.append(Reachability(j, True, (), size))
            continue
        takers: set[int] = set()
        for values in kept:
            if _holds(conditions[j], values):
                takers.add(next(i for i in range(j) if not continues[i] and _holds(conditions[i], values)))
        names = tuple(policy.document.spec.rules[i].name for i in sorted(takers))
        found.append(Reachability(j, False, names, size))
    return found
