"""The proposed policy: the current file with each calibrated number changed in place (comments and layout kept), checked
by the same loader as the proxy, and what changed in the `heedful policy diff` format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.policy.loader import LoadedPolicy, parse_policy
from app.policy_tools.calibrate.rules import Target
from app.policy_tools.diff import diff

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")


@dataclass(frozen=True)
class Move:
    target: Target
    threshold: float
    note: str  # why, in a few words, written as a comment above the rule's condition


def _number_text(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"


def proposed_text(policy: LoadedPolicy, moves: list[Move]) -> str:
    """The policy file's text with every move applied; raises ValueError when a condition cannot be found in the file."""
    text = Path(policy.file).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    # Bottom-up, so the line numbers of the rules still to edit do not move.
    for move in sorted(moves, key=lambda m: -m.target.index):
        line = policy.line_of("spec", "rules", move.target.index, "when") - 1
        start, end = move.target.span
        written = move.target.rule.when[start:end]
        replacement = _NUMBER.sub(_number_text(move.threshold), written, count=1)
        # The comparison is on the `when:` line, or on a continuation line of a folded condition.
        for at in range(line, len(lines)):
            if written in lines[at]:
                lines[at] = lines[at].replace(written, replacement, 1)
                break
        else:
            raise ValueError(f"{policy.file}:{line + 1}: cannot find {written!r} to change it")
        indent = re.match(r"\s*", lines[line].replace("- ", "  ", 1))
        lines.insert(line, f"{indent.group() if indent else ''}# {move.note}\n")
    return "".join(lines)


def propose(policy: LoadedPolicy, moves: list[Move], file: str) -> tuple[str, LoadedPolicy, list[str]]:
    """(text, the proposed policy as loaded, diff lines). The proposal loads through the proxy's own validation."""
    text = proposed_text(policy, moves)
    proposed = parse_policy(text, file)
    return text, proposed, diff(policy, proposed)
