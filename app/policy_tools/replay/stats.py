"""What a replay keeps, in bounded memory whatever the log's size: counters, fixed-bin histograms and small reservoirs
of examples (reservoir sampling keeps a uniform sample of k from a stream of unknown length)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.policy_tools.replay.worker import CONTEXT_NAMES, SCORE_NAMES, Line, Skipped

BINS = 20
EXAMPLES = 4
SKIPPED_LINES_KEPT = 5


class Reservoir:
    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.seen, self._rng = size, 0, rng
        self.items: list[Any] = []

    def offer(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            slot = self._rng.randrange(self.seen)
            if slot < self.size:
                self.items[slot] = item


@dataclass
class PolicyStats:
    name: str
    rules: list[str]
    rule_counts: Counter[str] = field(default_factory=Counter)
    action_counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, Reservoir] = field(default_factory=dict)


@dataclass
class ReplayStats:
    policies: list[PolicyStats]
    seed: int = 7
    lines: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)
    histograms: dict[str, list[int]] = field(default_factory=lambda: {n: [0] * BINS for n in (*SCORE_NAMES, *CONTEXT_NAMES)})
    changes: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    change_examples: dict[tuple[str, str, str, str], Reservoir] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def changed(self) -> int:
        return sum(self.changes.values())

    def add(self, item: Line | Skipped) -> None:
        self.lines += 1
        if isinstance(item, Skipped):
            reason = item.reason if len(self.skipped) < 50 else "other"
            self.skipped[reason] += 1
            kept = self.skipped_lines.setdefault(reason, [])
            if len(kept) < SKIPPED_LINES_KEPT:
                kept.append(item.number)
            return
        self.replayed += 1
        for name, value in zip((*SCORE_NAMES, *CONTEXT_NAMES), item.values, strict=True):
            self.histograms[name][min(BINS - 1, max(0, int(value * BINS)))] += 1
        for index, (stats, (rule, action)) in enumerate(zip(self.policies, item.decisions, strict=True)):
            stats.rule_counts[rule] += 1
            for continued in item.also[index] if item.also else ():
                stats.rule_counts[continued] += 1  # crisis resources count even where a repair then decided the body
            stats.action_counts[action] += 1
            if rule != "none":
                stats.examples.setdefault(rule, Reservoir(EXAMPLES, self._rng)).offer(item)
        shown = [("+".join([*(item.also[i] if item.also else ()), rule]), action)
                 for i, (rule, action) in enumerate(item.decisions)]
        if len(shown) == 2 and shown[0] != shown[1]:
            key = (*shown[0], *shown[1])
            self.changes[key] += 1
            self.change_examples.setdefault(key, Reservoir(EXAMPLES, self._rng)).offer(item)

    def summary(self) -> str:
        """A plain-text summary for the terminal."""
        out = [f"{self.lines} lines, {self.replayed} replayed, {sum(self.skipped.values())} skipped"
               + (f", {self.replayed / self.seconds:.1f} lines/s" if self.seconds else "")]
        for stats in self.policies:
            out.append(f"\npolicy {stats.name}: rule fired or continued (share of replayed lines; a continuing rule such as crisis resources is counted beside the rule that decided)")
            for rule in [*stats.rules, "none"]:
                count = stats.rule_counts.get(rule, 0)
                out.append(f"  {rule:<36} {count:>8}  {_pct(count, self.replayed)}")
            out.append("  actions: " + ", ".join(f"{a} {c} ({_pct(c, self.replayed)})" for a, c in stats.action_counts.most_common()))
        if len(self.policies) == 2:
            out.append(f"\noutcome changed on {self.changed} lines ({_pct(self.changed, self.replayed)}) "
                       f"from {self.policies[0].name} to {self.policies[1].name}:")
            for (ra, aa, rb, ab), count in self.changes.most_common(15):
                out.append(f"  {ra} ({aa}) -> {rb} ({ab}): {count}")
        for reason, count in self.skipped.most_common():
            lines = ", ".join(map(str, self.skipped_lines.get(reason, [])))
            out.append(f"skipped {count}: {reason} (e.g. line {lines})")
        return "\n".join(out)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"
