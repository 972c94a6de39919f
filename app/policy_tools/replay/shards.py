"""Replay in shards: which lines a shard takes, its partial result on disk, and the merge of all partials into one.

Shard i of N takes the log's lines whose line number n satisfies (n - 1) mod N == i: shards differ by at most one line
and each gets a slice of every part of the log (a log whose long conversations cluster at the end still splits evenly).
Line numbers stay those of the whole log, so examples and skipped lines point at the same places as a single run, and
the merge (see stats.py) gives exactly the stats one process would.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.policy.loader import LoadedPolicy, parse_policy
from app.policy_tools.replay.stats import EXAMPLES, PolicyStats, ReplayStats, Sample
from app.policy_tools.replay.worker import Line

PARTIAL_FORMAT = "heedful-replay-partial/1"


class ShardError(ValueError):
    """A bad --shard value or a set of partial results that do not make one whole replay."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def takes(self, number: int) -> bool:
        return (number - 1) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """'i/N' with 0 <= i < N (i is 0-based, as Kubernetes' JOB_COMPLETION_INDEX)."""
    index, slash, count = text.partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise ShardError(f"--shard {text!r}: expected INDEX/COUNT, e.g. 0/4 (INDEX counts from 0)")
    shard = Shard(int(index), int(count))
    if shard.count < 1 or not 0 <= shard.index < shard.count:
        raise ShardError(f"--shard {text!r}: INDEX must be from 0 to COUNT - 1")
    return shard


def _line_data(line: Line) -> dict[str, Any]:
    return asdict(line)


def _line(data: dict[str, Any]) -> Line:
    return Line(number=data["number"], id=data["id"], values=tuple(data["values"]),
                decisions=tuple((rule, action) for rule, action in data["decisions"]), user=data["user"],
                reply=data["reply"], also=tuple(tuple(rules) for rules in data["also"]))


def _sample(lines: list[dict[str, Any]], seed: int) -> Sample:
    sample = Sample(EXAMPLES, seed)
    for line in lines:
        sample.offer(_line(line))
    return sample


def stats_data(stats: ReplayStats) -> dict[str, Any]:
    """Everything a report is made of, in a fixed order (JSON): a single run and a merge of shards give equal data."""
    stats.canonical()
    return {
        "seed": stats.seed, "lines": stats.lines, "replayed": stats.replayed,
        "skipped": dict(stats.skipped), "skipped_lines": {r: stats.skipped_lines[r] for r in stats.skipped},
        "histograms": stats.histograms,
        "policies": [{"name": p.name, "rules": p.rules, "rule_counts": dict(p.rule_counts),
                      "action_counts": dict(p.action_counts),
                      "examples": {rule: [_line_data(line) for line in p.examples[rule].items] for rule in sorted(p.examples)}}
                     for p in stats.policies],
        "changes": [[*key, count] for key, count in stats.changes.items()],
        "change_examples": [[*key, [_line_data(line) for line in stats.change_examples[key].items]]
                            for key in sorted(stats.change_examples)],
    }


def stats_from_data(data: dict[str, Any], seconds: float = 0.0) -> ReplayStats:
    seed = data["seed"]
    policies = [PolicyStats(p["name"], p["rules"], Counter(p["rule_counts"]), Counter(p["action_counts"]),
                            {rule: _sample(lines, seed) for rule, lines in p["examples"].items()})
                for p in data["policies"]]
    stats = ReplayStats(policies, seed=seed, lines=data["lines"], replayed=data["replayed"],
                        skipped=Counter(data["skipped"]), skipped_lines=dict(data["skipped_lines"]),
                        histograms={k: list(v) for k, v in data["histograms"].items()}, seconds=seconds)
    for *key, count in data["changes"]:
        stats.changes[(key[0], key[1], key[2], key[3])] = count
    for *key, lines in data["change_examples"]:
        stats.change_examples[(key[0], key[1], key[2], key[3])] = _sample(lines, seed)
    return stats


def report_data(stats: ReplayStats, policies: list[LoadedPolicy], log: str) -> dict[str, Any]:
    """The JSON report (--json): the replay's data and what it was run with; `seconds` is the only field that differs
    between two runs of the same replay."""
    return {"log": log,
            "policies": [{"name": p.name, "version": p.version, "file": p.file, "digest": p.digest} for p in policies],
            "stats": stats_data(stats), "seconds": round(stats.seconds, 3)}


def write_partial(path: Path, stats: ReplayStats, shard: Shard, log: str, sources: list[tuple[str, str]], model: str) -> None:
    """One shard's result: its stats plus what the merge checks and needs (the policies' text, to render the report)."""
    partial = {"format": PARTIAL_FORMAT, "shard": [shard.index, shard.count], "log": log, "model": model,
               "policies": [{"file": file, "text": text} for text, file in sources],
               "stats": stats_data(stats), "seconds": stats.seconds}
    # Written whole and renamed into place: a merge waiting for the file never reads half of it.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(partial), encoding="utf-8")
    os.replace(temporary, path)


def merge_partials(paths: list[Path]) -> tuple[ReplayStats, list[LoadedPolicy], str]:
    """Merge the partial results of every shard of one replay; refuses a set with a shard missing, repeated, or run
    over another log, policy or model."""
    partials = []
    for path in paths:
        try:
            partial = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ShardError(f"{path}: not a readable partial result: {exc}") from exc
        if not isinstance(partial, dict) or partial.get("format") != PARTIAL_FORMAT:
            raise ShardError(f"{path}: not a heedful replay partial result (format {PARTIAL_FORMAT})")
        partials.append((path, partial))
    try:
        stats, first = _merge_checked(partials)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, ShardError):
            raise
        raise ShardError(f"a partial result is incomplete or damaged ({type(exc).__name__}: {exc})") from exc
    policies = [parse_policy(p["text"], p["file"]) for p in first["policies"]]
    return stats.canonical(), policies, str(first["log"])


def _merge_checked(partials: list[tuple[Path, dict[str, Any]]]) -> tuple[ReplayStats, dict[str, Any]]:
    """Check that the partials are each shard of one replay exactly once, then merge them in shard order."""
    first_path, first = partials[0]
    count = first["shard"][1]
    for path, partial in partials[1:]:
        for key in ("log", "model", "policies"):
            if partial[key] != first[key]:
                raise ShardError(f"{path}: {key} differs from {first_path}'s: the partials are not from one replay")
        if partial["shard"][1] != count:
            raise ShardError(f"{path}: shard {partial['shard'][0]}/{partial['shard'][1]} is not one of {count} shards")
    indexes = sorted(partial["shard"][0] for _, partial in partials)
    if indexes != list(range(count)):
        missing = sorted(set(range(count)) - set(indexes))
        repeated = sorted({i for i in indexes if indexes.count(i) > 1})
        raise ShardError(f"expected one partial for each of shards 0..{count - 1}; "
                         + (f"missing {missing}" if missing else "") + (f" repeated {repeated}" if repeated else ""))
    ordered = sorted(partials, key=lambda item: int(item[1]["shard"][0]))
    stats = stats_from_data(ordered[0][1]["stats"], ordered[0][1]["seconds"])
    for _, partial in ordered[1:]:
        stats.merge(stats_from_data(partial["stats"], partial["seconds"]))
    return stats, first
