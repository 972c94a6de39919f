"""`heedful calibrate`: from reviewed decisions, a threshold per label (the model's flags) and per policy rule for a target
precision or a maximum action rate, with what each would change.

A label's proposal moves the model threshold that sets its flag (thresholds.json); a rule's proposal moves the number its
condition compares its own label's score with. A rule acts on a decision when its condition holds there and no earlier
deciding rule holds (each rule is calibrated with the others as they are now).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.policy.loader import LoadedPolicy
from app.policy_tools.calibrate.metrics import GRID, Acts, Point, choose, points
from app.policy_tools.calibrate.reviews import Decision
from app.policy_tools.calibrate.rules import Target, behaviours, find_target, variable_rows
from classifiers.labels import CONTEXT_SIGNALS, HEADLINE_SCORES, SUB_SCORES, reviewed_truth

# Fewer reviewed positives or negatives than these for a label and nothing is proposed for it: precision and recall
# would rest on a handful of decisions (docs/calibration.md).
MIN_POSITIVES = 30
MIN_NEGATIVES = 30
# Under this many of either, a proposal is made but flagged: its intervals are wide.
FEW_REVIEWS = 100
LABEL_ORDER = (*HEADLINE_SCORES, *SUB_SCORES, *CONTEXT_SIGNALS)


@dataclass(frozen=True)
class Goal:
    target_precision: float | None = None
    max_action_rate: float | None = None

    def __str__(self) -> str:
        if self.target_precision is not None:
            return f"precision >= {self.target_precision:g}"
        return f"action rate <= {self.max_action_rate:g}"


@dataclass
class Item:
    """One label or one rule: where it stands now, what is proposed, and the curves behind the proposal."""

    kind: str  # "label" or "rule"
    name: str
    label: str
    variable: str
    current_threshold: float | None
    positives: int = 0
    negatives: int = 0
    current: Point | None = None
    proposed: Point | None = None
    reason: str = ""
    curve: list[Point] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    target: Target | None = None

    @property
    def moves(self) -> bool:
        return (self.proposed is not None and self.current_threshold is not None
                and abs(self.proposed.threshold - self.current_threshold) > 1e-9)


@dataclass
class Calibration:
    policy: LoadedPolicy
    goal: Goal
    reviewed: int  # all reviewed decisions read
    policy_reviewed: int  # of them, the ones this policy decided
    traffic: int
    traffic_source: str
    labels: list[Item]
    rules: list[Item]
    notes: list[str] = field(default_factory=list)


def _minimums(item: Item, min_positives: int, min_negatives: int) -> bool:
    if item.positives < min_positives or item.negatives < min_negatives:
        item.reason = (f"too few reviews to propose anything: {item.positives} positive and {item.negatives} negative "
                       f"reviewed decisions; at least {min_positives} and {min_negatives} are needed")
        return False
    if item.positives < FEW_REVIEWS or item.negatives < FEW_REVIEWS:
        item.warnings.append(f"few reviews ({item.positives} positive, {item.negatives} negative): the intervals are "
                             f"wide; treat the proposal as a direction, not a number")
    return True


def _finish(item: Item, reviewed_acts: Acts, y: np.ndarray, traffic_acts: Acts, traffic: int, goal: Goal) -> None:
    at = [item.current_threshold] if item.current_threshold is not None else []
    thresholds = np.array([*GRID, *at])
    every = points(thresholds, reviewed_acts, y, traffic_acts, traffic)
    item.curve = every[: len(GRID)]
    item.current = every[len(GRID)] if at else None
    item.proposed, item.reason = choose(item.curve, goal.target_precision, goal.max_action_rate)


def _at_or_above(scores: np.ndarray) -> Acts:
    def acts(thresholds: np.ndarray) -> np.ndarray:
        return np.asarray(scores[None, :] >= thresholds[:, None])

    return acts


def calibrate_labels(reviewed: Sequence[Decision], traffic: Sequence[Decision], thresholds: dict[str, float], goal: Goal,
                     min_positives: int = MIN_POSITIVES, min_negatives: int = MIN_NEGATIVES) -> list[Item]:
    named = {name for d in reviewed for name in d.labels}
    items = []
    for name in (n for n in LABEL_ORDER if n in named):
        pairs = [(score, label) for d in reviewed
                 if (score := d.score(name)) is not None and (label := d.labels.get(name)) is not None]
        scores = np.array([score for score, _ in pairs], dtype=np.float64)
        y = np.array([label for _, label in pairs], dtype=np.int8)
        seen = np.array([score for d in traffic if (score := d.score(name)) is not None], dtype=np.float64)
        group = "context" if name in CONTEXT_SIGNALS else "reply"
        item = Item("label", name, name, f"{group}.{name}", thresholds.get(name), int(y.sum()), int(len(y) - y.sum()))
        items.append(item)
        if not _minimums(item, min_positives, min_negatives):
            continue
        _finish(item, _at_or_above(scores), y, _at_or_above(seen), len(seen), goal)
    return items


def calibrate_rules(policy: LoadedPolicy, reviewed: Sequence[Decision], traffic: Sequence[Decision], goal: Goal,
                    traffic_is_reviewed: bool, min_positives: int = MIN_POSITIVES,
                    min_negatives: int = MIN_NEGATIVES) -> list[Item]:
    """Rules in order. A rule acts where it holds and no earlier deciding rule does: its current figures take the earlier
    rules as the file has them, its curve and proposal as the proposed file will (earlier proposals applied), so what is
    printed for a proposal is what the proposed policy does."""
    reviewed_rules = behaviours(policy, variable_rows(reviewed))
    traffic_rules = reviewed_rules if traffic_is_reviewed else behaviours(policy, variable_rows(traffic))
    taken = {"now": (np.zeros(len(reviewed), bool), np.zeros(len(traffic), bool))}
    taken["proposed"] = taken["now"]
    items = []
    for index, rule in enumerate(policy.document.spec.rules):
        mine, theirs = reviewed_rules[index], traffic_rules[index]
        target = find_target(index, rule)
        proposed_threshold = None
        if not isinstance(target, Target):
            items.append(Item("rule", rule.name, rule.label or "", "", None, reason=f"not calibrated: {target}"))
        else:
            known = np.array([reviewed_truth(d.labels, target.label) is not None for d in reviewed], dtype=bool)
            y = np.array([reviewed_truth(d.labels, target.label) or 0 for d in reviewed], dtype=np.int8)[known]
            item = Item("rule", rule.name, target.label, target.comparison.variable, target.comparison.value,
                        int(y.sum()), int(len(y) - y.sum()), target=target)
            items.append(item)
            if _minimums(item, min_positives, min_negatives):
                (r_now, t_now), (r_new, t_new) = taken["now"], taken["proposed"]
                current = points(np.array([target.comparison.value]), lambda t: (mine.holds(t) & ~r_now)[:, known], y,
                                 lambda t: theirs.holds(t) & ~t_now, len(traffic))[0]
                _finish(item, lambda t: (mine.holds(t) & ~r_new)[:, known], y, lambda t: theirs.holds(t) & ~t_new,
                        len(traffic), goal)
                item.current = current
                proposed_threshold = item.proposed.threshold if item.proposed else None
                if index and any(not r.continue_ for r in policy.document.spec.rules[:index]):
                    item.warnings.append("measured with the earlier rules as the proposed file has them")
        if not rule.continue_:
            (r_now, t_now), (r_new, t_new) = taken["now"], taken["proposed"]
            moved = proposed_threshold if proposed_threshold is not None else mine.current
            taken["now"] = (r_now | mine.holds_at(mine.current), t_now | theirs.holds_at(theirs.current))
            taken["proposed"] = (r_new | mine.holds_at(moved), t_new | theirs.holds_at(moved))
    return items


def calibrate(policy: LoadedPolicy, reviewed: Sequence[Decision], shadow: Sequence[Decision] | None,
              thresholds: dict[str, float], goal: Goal, min_positives: int = MIN_POSITIVES,
              min_negatives: int = MIN_NEGATIVES) -> Calibration:
    mine = [d for d in reviewed if d.policy == policy.name]
    notes = []
    others = sorted({d.policy for d in reviewed} - {policy.name})
    if others:
        notes.append(f"{len(reviewed) - len(mine)} reviewed decisions of other policies ({', '.join(others)}) count for "
                     f"the labels only")
    revisions = sorted({d.revision for d in mine if d.revision and d.revision != policy.revision})
    if revisions:
        notes.append(f"some decisions were made under other revisions of {policy.name} ({', '.join(revisions)}); the rules "
                     f"are measured as the current file ({policy.revision}) would decide on the same scores")
    traffic = list(shadow) if shadow else mine
    source = "the shadow sample" if shadow else "the reviewed decisions"
    if not shadow:
        notes.append("no --shadow sample: action rates are measured on the reviewed decisions, which over-represent the "
                     "decisions kept for review (every repair, a few passes); a shadow sample gives rates as traffic has them")
    labels = calibrate_labels(reviewed, list(shadow) if shadow else reviewed, thresholds, goal, min_positives, min_negatives)
    rules = calibrate_rules(policy, mine, traffic, goal, not shadow, min_positives, min_negatives)
    return Calibration(policy, goal, len(reviewed), len(mine), len(traffic), source, labels, rules, notes)
