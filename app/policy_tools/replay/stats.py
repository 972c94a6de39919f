"""What a replay keeps, in bounded memory whatever the log's size: counters, fixed-bin histograms and small samples of
examples.

Everything here merges exactly, so a log replayed in shards (`--shard i/N`) and merged gives the same stats as one
process: counts and histograms add up; an example sample keeps the k lines with the lowest priority, a keyed hash of the
line number (a uniform random sample of k that does not depend on the order lines arrive in, unlike classic reservoir
sampling); past MAX_SKIP_REASONS distinct skip reasons the alphabetically last ones are counted as OTHER_REASON.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.policy_tools.replay.worker import CONTEXT_NAMES, SCORE_NAMES, Line, Skipped

BINS = 20
EXAMPLES = 4
SKIPPED_LINES_KEPT = 5
MAX_SKIP_REASONS = 50
OTHER_REASON = "other"

ChangeKey = tuple[str, str, str, str]


def priority(seed: int, number: int) -> int:
    """A line's place in every example sample: a keyed hash of its line number, the same in any process or shard."""
    digest = hashlib.blake2b(number.to_bytes(8, "little"), digest_size=8, key=seed.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


class Sample:
    """The `size` lines of lowest priority offered so far (bottom-k sampling: merges exactly)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self._seed = size, seed
        self._kept: list[tuple[int, Line]] = []

    @property
    def items(self) -> list[Line]:
        return [line for _, line in sorted(self._kept, key=lambda kept: kept[1].number)]

    def offer(self, line: Line, rank: int | None = None) -> None:
        rank = priority(self._seed, line.number) if rank is None else rank
        if len(self._kept) < self.size:
            self._kept.append((rank, line))
            return
        worst = max(range(self.size), key=lambda i: self._kept[i][0])
        if rank < self._kept[worst][0]:
            self._kept[worst] = (rank, line)

    def merge(self, other: Sample) -> None:
        for rank, line in other._kept:
            self.offer(line, rank)


@dataclass
class PolicyStats:
    name: str
    rules: list[str]
    rule_counts: Counter[str] = field(default_factory=Counter)
    action_counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, Sample] = field(default_factory=dict)


@dataclass
class ReplayStats:
    policies: list[PolicyStats]
    seed: int = 7
    lines: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)
    histograms: dict[str, list[int]] = field(default_factory=lambda: {n: [0] * BINS for n in (*SCORE_NAMES, *CONTEXT_NAMES)})
    changes: Counter[ChangeKey] = field(default_factory=Counter)
    change_examples: dict[ChangeKey, Sample] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return sum(self.changes.values())

    def add(self, item: Line | Skipped) -> None:
        self.lines += 1
        if isinstance(item, Skipped):
            self._count_skip(item.reason, 1, [item.number])
            return
        self.replayed += 1
        rank = priority(self.seed, item.number)
        for name, value in zip((*SCORE_NAMES, *CONTEXT_NAMES), item.values, strict=True):
            self.histograms[name][min(BINS - 1, max(0, int(value * BINS)))] += 1
        for index, (stats, (rule, action)) in enumerate(zip(self.policies, item.decisions, strict=True)):
            stats.rule_counts[rule] += 1
            for continued in item.also[index] if item.also else ():
                stats.rule_counts[continued] += 1  # crisis resources count even where a repair then decided the body
            stats.action_counts[action] += 1
            if rule != "none":
                stats.examples.setdefault(rule, Sample(EXAMPLES, self.seed)).offer(item, rank)
        shown = [("+".join([*(item.also[i] if item.also else ()), rule]), action)
                 for i, (rule, action) in enumerate(item.decisions)]
        if len(shown) == 2 and shown[0] != shown[1]:
            key = (*shown[0], *shown[1])
            self.changes[key] += 1
            self.change_examples.setdefault(key, Sample(EXAMPLES, self.seed)).offer(item, rank)

    def _count_skip(self, reason: str, count: int, lines: list[int]) -> None:
        self.skipped[reason] += count
        self.skipped_lines[reason] = sorted({*self.skipped_lines.get(reason, []), *lines})[:SKIPPED_LINES_KEPT]
        named = sorted(r for r in self.skipped if r != OTHER_REASON)
        for excess in named[MAX_SKIP_REASONS:]:
            self._count_skip(OTHER_REASON, self.skipped.pop(excess), self.skipped_lines.pop(excess))

    def merge(self, other: ReplayStats) -> None:
        """Add another replay of other lines of the same log with the same policies (a shard) into this one."""
        if [p.name for p in other.policies] != [p.name for p in self.policies] or other.seed != self.seed:
            raise ValueError("replay stats of different policies or seeds cannot be merged")
        self.lines += other.lines
        self.replayed += other.replayed
        for reason, count in other.skipped.items():
            self._count_skip(reason, count, other.skipped_lines.get(reason, []))
        for name, counts in other.histograms.items():
            self.histograms[name] = [a + b for a, b in zip(self.histograms[name], counts, strict=True)]
        for mine, theirs in zip(self.policies, other.policies, strict=True):
            mine.rule_counts.update(theirs.rule_counts)
            mine.action_counts.update(theirs.action_counts)
            for rule, sample in theirs.examples.items():
                mine.examples.setdefault(rule, Sample(EXAMPLES, self.seed)).merge(sample)
        self.changes.update(other.changes)
        for key, sample in other.change_examples.items():
            self.change_examples.setdefault(key, Sample(EXAMPLES, self.seed)).merge(sample)
        self.seconds = max(self.seconds, other.seconds)  # shards run side by side: the slowest one sets the time

    def canonical(self) -> ReplayStats:
        """Order every counter by key, so ties in a most_common() listing come out the same however the lines arrived."""
        def ordered(counter: Counter[Any]) -> Counter[Any]:
            return Counter(dict(sorted(counter.items())))

        self.skipped, self.changes = ordered(self.skipped), ordered(self.changes)
        for stats in self.policies:
            stats.rule_counts, stats.action_counts = ordered(stats.rule_counts), ordered(stats.action_counts)
        return self

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
