"""`heedful policy diff`: what changed in meaning between two versions of a policy, not in text."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from app.policy.loader import LoadedPolicy
from app.policy.model import Rule
from app.policy_tools.conditions import comparisons, skeleton

_RULE_FIELDS = ("action", "label", "instruction", "text", "candidates", "max_attempts", "description")


def _flat(model: BaseModel, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in model:
        key = f"{prefix}.{name}"
        if isinstance(value, BaseModel):
            out |= _flat(value, key)
        else:
            out[key] = value.value if hasattr(value, "value") else value
    return out


def _show(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[\w.-]+", value):
        return value
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    return repr(value) if isinstance(value, str) else str(value)


def _threshold_moves(old: str, new: str) -> list[str] | None:
    """The moved thresholds when two conditions differ only in their numbers, else None."""
    if skeleton(old) != skeleton(new):
        return None
    moves = []
    for a, b in zip(comparisons(old), comparisons(new), strict=False):
        if a.value != b.value:
            looser = (b.value < a.value) == (a.op in (">", ">="))
            effect = "acts more often" if looser else "acts less often"
            if a.op in ("==", "!="):
                effect = "changed"
            moves.append(f"threshold {a.variable} {a.op} {a.value:g} -> {b.value:g} ({effect})")
    return moves or [f"condition numbers changed: {old!r} -> {new!r}"]


def _rule_changes(old: Rule, new: Rule) -> list[str]:
    out = []
    if old.when != new.when:
        moves = _threshold_moves(old.when, new.when)
        out += moves if moves is not None else [f"condition changed: {old.when!r} -> {new.when!r}"]
    for name in _RULE_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            a = a.value if hasattr(a, "value") else a
            b = b.value if hasattr(b, "value") else b
            out.append(f"{name} changed: {_show(a)} -> {_show(b)}")
    return out


def diff(old: LoadedPolicy, new: LoadedPolicy) -> list[str]:
    """One line per change in meaning; empty when the two behave the same (comments and layout are ignored)."""
    out: list[str] = []
    if old.name != new.name:
        out.append(f"name changed: {old.name} -> {new.name}")
    if old.version != new.version:
        out.append(f"version: {old.version} -> {new.version}")
    a_spec, b_spec = _flat(old.document.spec, "spec"), _flat(new.document.spec, "spec")
    for key in sorted(set(a_spec) | set(b_spec)):
        if key == "spec.rules":
            continue
        a, b = a_spec.get(key), b_spec.get(key)
        if a != b:
            label = {"spec.mode": "mode", "spec.default": "default policy"}.get(key, key.removeprefix("spec."))
            out.append(f"{label} changed: {_show(a)} -> {_show(b)}")
    old_rules = {r.name: r for r in old.document.spec.rules}
    new_rules = {r.name: r for r in new.document.spec.rules}
    for name in old_rules.keys() - new_rules.keys():
        out.append(f"rule removed: {name} (was {old_rules[name].action.value} when {old_rules[name].when!r})")
    for position, rule in enumerate(new.document.spec.rules, start=1):
        if rule.name not in old_rules:
            out.append(f"rule added at position {position}: {rule.name} ({rule.action.value} when {rule.when!r})")
    common_old = [r.name for r in old.document.spec.rules if r.name in new_rules]
    common_new = [r.name for r in new.document.spec.rules if r.name in old_rules]
    if common_old != common_new:
        out.append(f"rules reordered: {' > '.join(common_old)}  ->  {' > '.join(common_new)} (the first rule that holds decides)")
    for name in common_new:
        out += [f"rule {name}: {change}" for change in _rule_changes(old_rules[name], new_rules[name])]
    if old.document.tests != new.document.tests:
        out.append(f"inline tests: {len(old.document.tests)} -> {len(new.document.tests)} cases")
    return out
