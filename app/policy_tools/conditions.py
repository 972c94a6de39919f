"""Reading CEL conditions as a person would: their comparisons, their literals, and their parts with values filled in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel

from app.policy.cel_env import CONTEXT_FIELDS, OWNERS, REPLY_FIELDS, USER_FIELDS

SCORE_VARIABLES = (tuple(f"reply.{f}" for f in REPLY_FIELDS) + tuple(f"context.{f}" for f in CONTEXT_FIELDS)
                   + tuple(f"user.{f}" for f in USER_FIELDS))
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_OP = r"<=|>=|==|!=|<|>"
_OWNER = "|".join(OWNERS)
_VAR = rf"(?:{_OWNER})\s*\.\s*[A-Za-z_][A-Za-z0-9_]*|attempt"
_VAR_FIRST = re.compile(rf"(?P<var>{_VAR})\s*(?P<op>{_OP})\s*(?P<num>{_NUMBER})(?![\w.])")
_NUM_FIRST = re.compile(rf"(?<![\w.])(?P<num>{_NUMBER})\s*(?P<op>{_OP})\s*(?P<var>{_VAR})")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_REFERENCE = re.compile(rf"\b(?:({_OWNER})\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)|(attempt|flags))\b")


@dataclass(frozen=True)
class Comparison:
    """`variable op number`, normalised so the variable is on the left (`0.5 <= reply.x` reads `reply.x >= 0.5`)."""

    variable: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.variable} {self.op} {self.value:g}"


def mask_strings(source: str) -> str:
    """The source with every string literal blanked (same length), so nothing inside a string is read as code."""
    return _STRING.sub(lambda m: "'" + " " * (len(m.group()) - 2) + "'", source)


def comparison_spans(source: str) -> list[tuple[int, int, Comparison]]:
    """Each comparison with the [start, end) of its text in source, in order (calibrate rewrites one by its span)."""
    masked = mask_strings(source)
    found: list[tuple[int, int, Comparison]] = []
    for m in _VAR_FIRST.finditer(masked):
        found.append((m.start(), m.end(), Comparison(re.sub(r"\s+", "", m["var"]), m["op"], float(m["num"]))))
    for m in _NUM_FIRST.finditer(masked):
        found.append((m.start(), m.end(), Comparison(re.sub(r"\s+", "", m["var"]), _FLIP[m["op"]], float(m["num"]))))
    return sorted(found, key=lambda found_at: found_at[0])


def comparisons(source: str) -> list[Comparison]:
    return [c for _, _, c in comparison_spans(source)]


def numeric_literals(source: str) -> list[float]:
    masked = mask_strings(source)
    return [float(m) for m in re.findall(rf"(?<![\w.]){_NUMBER}(?![\w.])", masked)]


def string_literals(source: str) -> list[str]:
    return [m[1:-1] for m in _STRING.findall(source)]


def references(source: str) -> set[str]:
    """The variables a condition reads: `reply.pacification`, `request.tenant`, `attempt`, `flags`."""
    masked = mask_strings(source)
    return {f"{m[0]}.{m[1]}" if m[0] else m[2] for m in _REFERENCE.findall(masked)}


def reference_counts(source: str) -> dict[str, int]:
    """How many times each variable is read in the condition."""
    counts: dict[str, int] = {}
    for m in _REFERENCE.finditer(mask_strings(source)):
        name = f"{m[1]}.{m[2]}" if m[1] else m[3]
        counts[name] = counts.get(name, 0) + 1
    return counts


def skeleton(source: str) -> str:
    """The condition with its numbers replaced by `#` and spacing removed: equal skeletons differ only in thresholds."""
    masked = re.sub(rf"(?<![\w.]){_NUMBER}(?![\w.])", "#", mask_strings(source))
    return re.sub(r"\s+", "", masked)


def split_top_level(source: str) -> tuple[list[str], list[str]]:
    """Split on `&&`/`||` outside parentheses and strings: the parts and the operators between them."""
    masked = mask_strings(source)
    parts: list[str] = []
    ops: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(masked):
        ch = masked[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and masked[i : i + 2] in ("&&", "||"):
            parts.append(source[start:i].strip())
            ops.append(masked[i : i + 2])
            start = i + 2
            i += 1
        i += 1
    parts.append(source[start:].strip())
    if len(parts) == 1 and parts[0].startswith("(") and parts[0].endswith(")") and _wraps(mask_strings(parts[0])):
        return split_top_level(parts[0][1:-1])
    return parts, ops


def _wraps(masked: str) -> bool:
    depth = 0
    for i, ch in enumerate(masked):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(masked) - 1:
            return False
    return True


def value_of(name: str, values: dict[str, Any]) -> Any:
    owner, _, field = name.partition(".")
    value = values.get(owner)
    return value.get(field) if field and isinstance(value, dict) else value


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4f}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def fill_in(source: str, values: dict[str, Any]) -> str:
    """`reply.pacification >= 0.5` becomes `reply.pacification (0.91) >= 0.5`."""
    masked = mask_strings(source)
    out, last = [], 0
    for m in _REFERENCE.finditer(masked):
        name = f"{m[1]}.{m[2]}" if m[1] else m[3]
        out.append(source[last : m.end()] + f" ({_show(value_of(name, values))})")
        last = m.end()
    return "".join(out) + source[last:]


def holds(source: str, values: dict[str, Any]) -> bool | None:
    """Evaluate one part on its own; None when it cannot be evaluated alone."""
    try:
        result = cel.compile(source).execute(values)
    except Exception:
        return None
    return result if isinstance(result, bool) else None


def explain_condition(source: str, values: dict[str, Any]) -> list[str]:
    """One line per top-level part, `reply.x (0.91) >= 0.5 -> true`, then the whole when there are several parts."""
    parts, ops = split_top_level(source)
    lines = []
    for index, part in enumerate(parts):
        result = holds(part, values)
        joiner = f"{ops[index - 1]} " if index else ""
        lines.append(f"{joiner}{fill_in(part, values)} -> {_show(result) if result is not None else '?'}")
    return lines
