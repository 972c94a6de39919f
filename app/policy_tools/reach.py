"""Rules that can never fire: evaluate every condition over a deterministic grid of variable values built from the
literals the conditions use (each numeric literal, and it +-0.001). A score that is only ever compared with literals gets
only its own literals' values: no other value can change a condition's outcome, and the grid stays small enough to walk
whole. A rule is unreachable when every grid point where it holds is taken by an earlier rule, and never true when it
holds on no point. A grid is a sample, not a proof: the finding is reported as what the grid showed."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.policy.cel_env import FLAG_NAMES, SCORE_RANGES, Condition, probe_variables
from app.policy.loader import LoadedPolicy
from app.policy_tools.conditions import comparisons, numeric_literals, reference_counts, references, string_literals

GRID_LIMIT = 60_000  # beyond this many points, a seeded sample of this size is drawn instead
FOCUS_LIMIT = 4_096  # a rule reading more combinations than this gets no focused block
_STEP = 0.001


@dataclass(frozen=True)
class Reachability:
    rule_index: int
    never_true: bool
    shadowed_by: tuple[str, ...]  # earlier rules that took every point where this one holds
    points: int


def _score_values(literals: list[float], low: float = 0.0, high: float = 1.0) -> list[float]:
    """Both ends of the range, 0 where it lies inside, and each literal in it with its neighbours either side."""
    values = {low, high, *([0.0] if low < 0.0 < high else [])}
    for lit in literals:
        for v in (lit - _STEP, lit, lit + _STEP):
            if low <= v <= high:
                values.add(round(v, 6))
    return sorted(values)


def _int_values(literals: list[float]) -> list[int]:
    values = {0, 1, 2, 3}
    for lit in literals:
        for v in (int(lit) - 1, int(lit), int(lit) + 1):
            if v >= 0:
                values.add(v)
    return sorted(values)


def _own_literals(sources: list[str]) -> dict[str, list[float]]:
    """The literals each variable is compared with, for the variables that appear nowhere but in `variable op number`
    (the others, in arithmetic or compared with each other, can meet any literal)."""
    compared: dict[str, list[float]] = {}
    seen: dict[str, int] = {}
    for source in sources:
        for comparison in comparisons(source):
            compared.setdefault(comparison.variable, []).append(comparison.value)
        for name, count in reference_counts(source).items():
            seen[name] = seen.get(name, 0) + count
    return {name: values for name, values in compared.items() if len(values) == seen.get(name)}


def _domains(sources: list[str]) -> dict[str, list[Any]]:
    names = set().union(*(references(s) for s in sources)) if sources else set()
    all_literals = [x for s in sources for x in numeric_literals(s)]
    own = _own_literals(sources)
    strings = sorted({x for s in sources for x in string_literals(s)})
    domains: dict[str, list[Any]] = {}
    for name in sorted(names):
        literals = own.get(name, all_literals)
        if name in SCORE_RANGES:
            low, high = SCORE_RANGES[name]
            domains[name] = _score_values([x for x in literals if low - _STEP <= x <= high + _STEP] or [(low + high) / 2],
                                          low, high)
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


def _point(names: list[str], combo: tuple[Any, ...]) -> dict[str, Any]:
    values = probe_variables(0.0)
    for name, value in zip(names, combo, strict=True):
        owner, _, field = name.partition(".")
        if field:
            values[owner][field] = value
        else:
            values[owner] = value
    return values


def _focused(domains: dict[str, list[Any]], sources: list[str], fires: list[bool]) -> Iterator[dict[str, Any]]:
    """Rule by rule, the grid over that rule's own variables with every other variable at the low (then the high) end
    of its range: where a threshold rule fires with the other scores quiet, this finds it in a few points instead of
    thousands of random ones. A rule's block stops once it has fired."""
    names = list(domains)
    for j, source in enumerate(sources):
        read = references(source)
        own = [n for n in names if n in read]
        size = 1
        for n in own:
            size *= len(domains[n])
        if size > FOCUS_LIMIT:
            continue
        for end in (0, -1):
            base = {n: domains[n][end] for n in names}
            # The corners first: a threshold rule's witness is almost always each of its scores at one end or the other.
            corners = itertools.product(*(_ends(domains[n]) for n in own))
            for combo in itertools.chain(corners, itertools.product(*(domains[n] for n in own))):
                if fires[j]:
                    break
                chosen = dict(zip(own, combo, strict=True))
                yield _point(names, tuple(chosen.get(n, base[n]) for n in names))


def _ends(values: list[Any]) -> list[Any]:
    return [values[-1], values[0]] if len(values) > 1 else values


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
    return (_point(names, combo) for combo in combos), size


def _holds(condition: Any, values: dict[str, Any]) -> bool:
    try:
        return bool(condition.holds(values))
    except Exception:  # a type error on an odd grid point is "does not hold" there
        return False


def analyse(policy: LoadedPolicy) -> list[Reachability]:
    """The rules the grid never saw fire, each with the earlier rules that took its points."""
    rules = policy.document.spec.rules
    # A rule that continues (crisis resources, say) applies and lets later rules decide: it takes no point from them.
    continues = tuple(rule.continue_ for rule in rules)
    names = tuple(rule.name for rule in rules)
    key = (tuple(c.source for c in policy.conditions), continues, names)
    if key not in _SEARCHED:
        if len(_SEARCHED) >= 64:
            _SEARCHED.clear()
        _SEARCHED[key] = _search(list(policy.conditions), continues, names)
    return list(_SEARCHED[key])


# The search is a pure function of the rules, and a process loads the same policy several times (the start-up check,
# the summary, the service; every hot reload of every file in the directory): each distinct rule list is searched once.
_SEARCHED: dict[tuple[tuple[str, ...], tuple[bool, ...], tuple[str, ...]], list[Reachability]] = {}


def _search(conditions: list[Condition], continues: tuple[bool, ...], names: tuple[str, ...]) -> list[Reachability]:
    domains = _domains([c.source for c in conditions])
    count = len(conditions)
    fires = [False] * count
    ever_true = [False] * count
    grid, size = _points(domains)
    kept: list[dict[str, Any]] = []
    for values in itertools.chain(_focused(domains, [c.source for c in conditions], fires), grid):
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
        found.append(Reachability(j, False, tuple(names[i] for i in sorted(takers)), size))
    return found
