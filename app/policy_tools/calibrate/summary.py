"""What calibrate prints, and the same as JSON (summary.json) for anyone who wants to chart or diff it."""

from __future__ import annotations

from typing import Any

from app.policy_tools.calibrate.metrics import Point
from app.policy_tools.calibrate.run import Calibration, Item


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ratio(value: float | None, interval: tuple[float, float]) -> str:
    return "-" if value is None else f"{value:.2f} [{interval[0]:.2f}-{interval[1]:.2f}]"


def describe(point: Point | None) -> str:
    if point is None:
        return "-"
    return (f"precision {_ratio(point.precision, point.precision_interval)} ({point.true_positives}/{point.flagged}), "
            f"recall {_ratio(point.recall, point.recall_interval)} ({point.true_positives}/{point.positives}), "
            f"action rate {percent(point.rate)} [{percent(point.rate_interval[0])}-{percent(point.rate_interval[1])}] "
            f"({point.acted:,}/{point.traffic:,})")


def _item_lines(item: Item) -> list[str]:
    where = item.variable or item.label or "-"
    current = "-" if item.current_threshold is None else f"{item.current_threshold:g}"
    if item.target is None and item.kind == "rule":
        return [f"  {item.name}: {item.reason}"]
    if item.proposed is None:
        lines = [f"  {item.name}: {where} {current}: no proposal: {item.reason}"]
        if item.current is not None:
            lines.append(f"      now       {describe(item.current)}")
        return lines
    head = f"{where} {current} -> {item.proposed.threshold:g}" if item.moves else f"{where} stays at {current}"
    lines = [f"  {item.name}: {head} ({item.reason})",
             f"      now       {describe(item.current)}",
             f"      proposed  {describe(item.proposed)}"]
    lines += [f"      warning: {w}" for w in item.warnings]
    return lines


def text(result: Calibration) -> str:
    policy = result.policy
    lines = [f"calibrate {policy.name} v{policy.version} ({policy.revision}) for {result.goal}: {result.reviewed:,} reviewed "
             f"decisions, {result.policy_reviewed:,} of them by {policy.name}; action rates on {result.traffic_source} "
             f"({result.traffic:,} decisions). Intervals: 95% Wilson; counts in brackets."]
    lines += [f"note: {n}" for n in result.notes]
    lines.append("labels (the model's flag thresholds, thresholds.json; flags feed rules such as 'crisis' in flags):")
    for item in result.labels:
        lines += _item_lines(item)
    if not result.labels:
        lines.append("  none: no reviewed decision carries labels")
    lines.append(f"rules of {policy.name} (the number each compares its own label's score with):")
    for item in result.rules:
        lines += _item_lines(item)
    return "\n".join(lines)


def _item_dict(item: Item) -> dict[str, Any]:
    return {"name": item.name, "label": item.label, "variable": item.variable, "current_threshold": item.current_threshold,
            "proposed_threshold": item.proposed.threshold if item.proposed else None, "reason": item.reason,
            "positives": item.positives, "negatives": item.negatives, "warnings": item.warnings,
            "current": item.current.as_dict() if item.current else None,
            "proposed": item.proposed.as_dict() if item.proposed else None}


def as_json(result: Calibration) -> dict[str, Any]:
    return {"policy": result.policy.name, "policy_version": result.policy.version, "policy_revision": result.policy.revision,
            "goal": str(result.goal), "reviewed": result.reviewed, "policy_reviewed": result.policy_reviewed,
            "traffic": result.traffic, "traffic_source": result.traffic_source, "notes": result.notes,
            "labels": [_item_dict(i) for i in result.labels], "rules": [_item_dict(i) for i in result.rules]}
