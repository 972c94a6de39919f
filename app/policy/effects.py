"""What actions do to the text, in one place: the proxy (guard), `/v1/guard/score`, `policy test`, `explain` and `replay`
all compose a reply through this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.policy.model import Action, Rule


@dataclass(frozen=True)
class Composition:
    prefix: str  # fixed text before the body (crisis resources); streaming sends it first
    body: str
    suffix: str
    review: bool  # an escalate rule applied: record for human review

    @property
    def text(self) -> str:
        return self.prefix + self.body + self.suffix


def compose(rules: Sequence[Rule], body: str) -> Composition:
    """Apply the fixed-text and review effects of the rules that applied (continuing rules first, then the deciding one)
    around a body (the draft, or the repaired draft). Text placed by a rule is never removed, even by a replacement."""
    prefix, suffix, review = "", "", False
    for rule in rules:
        if rule.action == Action.append and rule.text:
            suffix += "\n\n" + rule.text
        elif rule.action == Action.prepend and rule.text:
            prefix += rule.text + "\n\n"
        elif rule.action == Action.replace and rule.text:
            body = rule.text
        elif rule.action == Action.escalate:
            review = True
    return Composition(prefix, body, suffix, review)
