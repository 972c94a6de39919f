"""`heedful replay --shard i/N` in separate processes, then `--merge`: the same report as one process replaying the log."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.policy_tools.replay.shards import ShardError, Shard, parse_shard, stats_data
from app.policy_tools.replay.stats import MAX_SKIP_REASONS, OTHER_REASON, PolicyStats, ReplayStats
from app.policy_tools.replay.worker import Line, Skipped

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
SHARDS = 3
USERS = ["I want to kill myself tonight.", "What's the capital of France?", "I'm scared about my biopsy results on Friday.",
         "My boss took credit for my work and I'm furious.", "I didn't get into the PhD program. I feel like a failure."]
REPLIES = ["Paris.", "Don't worry, I'm sure it's nothing! Stay positive.", "Next steps: 1) update your CV 2) reapply.",
           "That sounds really hard. What part of it is staying with you?", "Don't think like that."]


def _log(path: Path) -> Path:
    rng = random.Random(3)
    lines = []
    for i in range(46):
        if i % 11 == 5:
            lines.append("{not json")
        elif i % 13 == 7:
            lines.append(json.dumps({"request_id": f"r{i}", "rule": "none"}))
        elif i % 17 == 3:
            lines.append(json.dumps({"id": i, "messages": [{"role": "bot", "content": "hi"}], "reply": "x"}))
        elif i % 19 == 9:
            lines.append("")  # blank lines are neither read nor counted
        else:
            lines.append(json.dumps({"id": i, "messages": [{"role": "user", "content": rng.choice(USERS)}],
                                     "reply": rng.choice(REPLIES)}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _heedful(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "replay", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, env=os.environ | {"PYTHONPATH": str(REPO)}, timeout=600)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One single-process replay and the same replay in SHARDS concurrent processes, merged."""
    tmp = tmp_path_factory.mktemp("shards")
    log = _log(tmp / "log.jsonl")
    other = tmp / "no-crisis.yaml"
    other.write_text((POLICIES / "default.yaml").read_text().replace("when: \"'crisis' in flags\"", "when: \"attempt > 5\"")
                     .replace("name: default", "name: no-crisis"))
    policies = ["--policy", POLICIES / "default.yaml", "--against", other, "--no-progress", "--workers", "1"]
    shards = [subprocess.Popen([sys.executable, "-m", "app.cli", "replay", str(log), *map(str, policies), "--shard",
                                f"{i}/{SHARDS}", "--partial", str(tmp / f"part-{i}.json")], cwd=REPO, text=True,
                               env=os.environ | {"PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for i in range(SHARDS)]
    single = _heedful(log, *policies, "--json", tmp / "single.json", "--report", tmp / "single.html")
    assert single.returncode == 0, single.stderr
    (tmp / "single.out").write_text(single.stdout)
    for shard in shards:
        _, err = shard.communicate(timeout=600)
        assert shard.returncode == 0, err
    # Partials listed out of order: the merge must not depend on it.
    merged = _heedful("--merge", *[tmp / f"part-{i}.json" for i in reversed(range(SHARDS))], "--json", tmp / "merged.json",
                      "--report", tmp / "merged.html")
    assert merged.returncode == 0, merged.stderr
    (tmp / "merged.out").write_text(merged.stdout)
    return tmp


def test_merged_shards_give_the_single_process_report(replayed: Path):
    single, merged = (json.loads((replayed / f"{name}.json").read_text()) for name in ("single", "merged"))
    single.pop("seconds"), merged.pop("seconds")
    assert merged == single
    stats = single["stats"]
    # The log really exercises every part: skips of three kinds, changed outcomes with examples, rule examples.
    assert stats["lines"] == 44 and len(stats["skipped"]) == 3 and sum(stats["skipped"].values()) == 9
    assert stats["changes"] and all(examples for *_, examples in stats["change_examples"])
    assert any(p["examples"] for p in stats["policies"])


def test_merged_html_and_summary_match_apart_from_time(replayed: Path):
    def timeless(text: str) -> str:
        text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d · \d+ s", "TIME", text)
        return re.sub(r", [\d.]+ lines/s", "", text)

    for suffix in ("html", "out"):
        single, merged = ((replayed / f"{name}.{suffix}").read_text() for name in ("single", "merged"))
        assert timeless(merged) == timeless(single)
    assert "Conversations that change outcome" in (replayed / "merged.html").read_text()


def test_shards_split_the_log_evenly(replayed: Path):
    partials = [json.loads((replayed / f"part-{i}.json").read_text()) for i in range(SHARDS)]
    counts = [p["stats"]["lines"] for p in partials]
    assert sum(counts) == 44
    # 46 numbered lines, 2 blank: each shard takes every third line number.
    assert max(counts) - min(counts) <= 2
    assert [p["shard"] for p in partials] == [[i, SHARDS] for i in range(SHARDS)]


def test_merge_refuses_an_incomplete_or_mixed_set(replayed: Path, tmp_path: Path):
    parts = [replayed / f"part-{i}.json" for i in range(SHARDS)]
    missing = _heedful("--merge", *parts[:2])
    assert missing.returncode == 2 and "missing [2]" in missing.stderr
    repeated = _heedful("--merge", parts[0], parts[0], parts[1], parts[2])
    assert repeated.returncode == 2 and "repeated [0]" in repeated.stderr
    edited = json.loads(parts[2].read_text())
    edited["policies"][0]["text"] += "\n# edited\n"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    mixed = _heedful("--merge", parts[0], parts[1], tmp_path / "edited.json")
    assert mixed.returncode == 2 and "policies differs" in mixed.stderr
    damaged = json.loads(parts[1].read_text())
    del damaged["stats"]["histograms"]
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    broken = _heedful("--merge", parts[0], tmp_path / "damaged.json", parts[2])
    assert broken.returncode == 2 and "incomplete or damaged (KeyError: 'histograms')" in broken.stderr
    (tmp_path / "junk.json").write_text("[1, 2]")
    junk = _heedful("--merge", tmp_path / "junk.json")
    assert junk.returncode == 2 and "not a heedful replay partial result" in junk.stderr


@pytest.mark.parametrize("value", ["4/4", "-1/4", "1", "a/b", "0/0"])
def test_a_bad_shard_is_refused_with_the_reason(value: str):
    with pytest.raises(ShardError, match="--shard"):
        parse_shard(value)


def test_shard_needs_a_partial_path(tmp_path: Path):
    result = _heedful(_log(tmp_path / "log.jsonl"), "--policy", POLICIES / "default.yaml", "--shard", "0/2")
    assert result.returncode == 2 and "--shard and --partial go together" in result.stderr


def _synthetic(number: int, rng: random.Random) -> Line | Skipped:
    if rng.random() < 0.3:
        return Skipped(number, f"reason {rng.randrange(80):02d}")
    rule_a, rule_b = rng.choice(["none", "repair", "crisis"]), rng.choice(["none", "repair"])
    return Line(number, number, tuple(rng.random() for _ in range(8)), ((rule_a, "allow"), (rule_b, "regenerate")),
                "user", "reply", ((), ()))


def test_stats_merge_exactly_even_past_the_skip_reason_cap():
    """Many shards and more distinct skip reasons than are kept by name: the merge still equals the single pass."""
    rng = random.Random(5)
    items = [_synthetic(n, rng) for n in range(1, 3001)]

    def fresh() -> ReplayStats:
        return ReplayStats([PolicyStats("a", ["repair", "crisis"]), PolicyStats("b", ["repair"])])

    single = fresh()
    for item in items:
        single.add(item)
    assert OTHER_REASON in single.skipped and len(single.skipped) == MAX_SKIP_REASONS + 1
    for count in (2, 7):
        parts = [fresh() for _ in range(count)]
        for item in items:
            next(part for i, part in enumerate(parts) if Shard(i, count).takes(item.number)).add(item)
        merged = parts[0]
        for part in parts[1:]:
            merged.merge(part)
        assert stats_data(merged) == stats_data(single)


def test_a_known_skip_reason_keeps_its_name_after_the_cap_is_reached():
    """Before: once 50 distinct reasons were seen, every later skip, even of a known reason, was counted as 'other'."""
    stats = ReplayStats([PolicyStats("a", [])])
    stats.add(Skipped(1, "needs 'messages'"))
    for n in range(MAX_SKIP_REASONS + 5):
        stats.add(Skipped(n + 2, f"zz reason {n:03d}"))
    stats.add(Skipped(999, "needs 'messages'"))
    assert stats.skipped["needs 'messages'"] == 2 and stats.skipped_lines["needs 'messages'"] == [1, 999]
    assert stats.skipped[OTHER_REASON] == 6
