"""`heedful calibrate` on review exports: proposals checked against the real policy engine, refusals, bad input."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from app.cli import main
from app.policy.engine import RequestFacts, evaluate, variables
from app.policy.loader import load_policy_file
from classifiers.artifacts import DEFAULT_MODEL_DIR, load_model_info
from classifiers.labels import flags_of

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "policies" / "default.yaml"
THRESHOLDS = load_model_info(DEFAULT_MODEL_DIR).thresholds


def _decision(rng: random.Random, number: int, positives: dict[str, float], reviewed: bool = True) -> dict[str, object]:
    labels = {name: int(rng.random() < share) for name, share in positives.items()}

    def score(name: str) -> float:
        # Overlapping distributions: precision rises with the threshold, as on real traffic.
        return round(rng.betavariate(4, 2) if labels.get(name) else rng.betavariate(1.5, 4), 4)

    reply = {n: score(n) for n in ("pacification", "sycophancy_epistemic", "sycophancy_social", "rushed_advice")}
    reply["sycophancy"] = max(reply["sycophancy_epistemic"], reply["sycophancy_social"])
    context = {"distress": round(rng.uniform(0.3, 1.0), 4), "crisis": round(rng.uniform(0, 0.2), 4),
               "advice_requested": round(rng.uniform(0, 0.2), 4)}
    row: dict[str, object] = {"id": f"d{number}", "scores": reply, "context": context,
                              "flags": flags_of(reply, context, THRESHOLDS)}
    if reviewed:
        exported = {"pacification": labels["pacification"], "rushed_advice": labels["rushed_advice"],
                    "sycophancy": max(labels["sycophancy_epistemic"], labels["sycophancy_social"])}
        row |= {"policy": "default", "policy_revision": "r1", "rule": "none", "action": "allow", "tenant": "acme",
                "ts": 1_764_000_000 + number, "labels": exported,
                "review": {"reviewer": "ana", "ts": 1_764_000_100 + number, "note": "", "marks": {}}}
    return row


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _reviews(path: Path, count: int = 1500, seed: int = 3, share: float = 0.3) -> Path:
    rng = random.Random(seed)
    shares = {"pacification": share, "sycophancy_epistemic": 0.15, "sycophancy_social": 0.15, "rushed_advice": share}
    return _write(path, [_decision(rng, n, shares) for n in range(count)])


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", *argv])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _acting(policy_file: Path, rows: list[dict[str, object]], rule: str) -> tuple[int, int]:
    """(decisions where the rule decides, of them reviewed as pacifying) by the real engine on the proposed file."""
    policy = load_policy_file(policy_file)
    acted = right = 0
    for row in rows:
        values = variables(row["scores"], row["context"], RequestFacts("", "acme", False, 1), 0, row["flags"])  # type: ignore[arg-type]
        if evaluate(policy, values).rule_name == rule:
            acted += 1
            right += row["labels"]["pacification"]  # type: ignore[index]
    return acted, right


def test_proposes_rule_thresholds_that_meet_the_target_when_the_engine_decides(capsys, tmp_path: Path):
    reviews = _reviews(tmp_path / "reviews.jsonl")
    out_dir = tmp_path / "out"
    code, out, err = _run(capsys, "--reviews", str(reviews), "--policy", str(DEFAULT), "--target-precision", "0.8",
                          "--out", str(out_dir))
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    rule = next(r for r in summary["rules"] if r["name"] == "repair-pacification")
    assert rule["current_threshold"] == 0.3 and rule["proposed_threshold"] > 0.3
    proposed_file = out_dir / "default.proposed.yaml"
    rows = [json.loads(line) for line in reviews.read_text().splitlines()]
    # The figures printed for the proposal are what the real engine does with the proposed file.
    acted, right = _acting(proposed_file, rows, "repair-pacification")
    assert (acted, right) == (rule["proposed"]["flagged"], rule["proposed"]["true_positives"])
    assert right / acted >= 0.8
    assert _acting(DEFAULT, rows, "repair-pacification") == (rule["current"]["flagged"], rule["current"]["true_positives"])
    assert f"repair-pacification: reply.pacification 0.3 -> {rule['proposed_threshold']:g}" in out
    # The diff written is `heedful policy diff` of the current and the proposed file, and the comments survive.
    with pytest.raises(SystemExit):
        main(["policy", "diff", str(DEFAULT), str(proposed_file)])
    assert capsys.readouterr().out == (out_dir / "policy.diff").read_text()
    assert f"threshold reply.pacification >= 0.3 -> {rule['proposed_threshold']:g} (acts less often)" in \
        (out_dir / "policy.diff").read_text()
    text = proposed_file.read_text()
    assert "# How to read this file" in text and "# calibrated for precision >= 0.8: 0.3 ->" in text
    # Crisis rules act on the model's flags: they are explained, not moved.
    assert "crisis-resources: not calibrated: it acts on the 'crisis' flag" in out
    report = (out_dir / "report.html").read_text()
    assert report.count("<svg") == len(summary["labels"]) + sum(1 for r in summary["rules"] if r["proposed"] or r["current"])
    assert not re.search(r"(src|href)=\"https?:", report) and "<script" not in report


def test_max_action_rate_is_measured_on_the_shadow_sample(capsys, tmp_path: Path):
    reviews = _reviews(tmp_path / "reviews.jsonl", 600)
    rng = random.Random(9)
    shadow = _write(tmp_path / "shadow.jsonl", [_decision(rng, n, {"pacification": 0.05, "sycophancy_epistemic": 0.02,
                                                                    "sycophancy_social": 0.02, "rushed_advice": 0.05},
                                                          reviewed=False) for n in range(3000)])
    code, out, err = _run(capsys, "--reviews", str(reviews), "--shadow", str(shadow), "--policy", str(DEFAULT),
                          "--max-action-rate", "0.02", "--out", str(tmp_path / "out"))
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["traffic"] == 3000 and summary["traffic_source"] == "the shadow sample"
    for item in summary["rules"] + summary["labels"]:
        if item["proposed"]:
            assert item["proposed"]["traffic"] == 3000 and item["proposed"]["action_rate"] <= 0.02
    pacification = next(i for i in summary["labels"] if i["name"] == "pacification")
    scores = [json.loads(line)["scores"]["pacification"] for line in shadow.read_text().splitlines()]
    threshold = pacification["proposed_threshold"]
    assert pacification["proposed"]["acted"] == sum(s >= threshold for s in scores)
    assert sum(s >= round(threshold - 0.01, 2) for s in scores) / 3000 > 0.02  # the lowest threshold that fits


def test_too_few_reviews_for_a_label_gets_no_proposal(capsys, tmp_path: Path):
    reviews = _reviews(tmp_path / "reviews.jsonl", 300, share=0.05)  # about 15 pacification positives
    code, out, err = _run(capsys, "--reviews", str(reviews), "--policy", str(DEFAULT), "--target-precision", "0.8",
                          "--out", str(tmp_path / "out"))
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("  repair-pacification:"))
    assert re.search(r"no proposal: too few reviews to propose anything: \d+ positive and \d+ negative reviewed "
                     r"decisions; at least 30 and 30 are needed", line)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert all(i["proposed_threshold"] is None for i in summary["labels"] if i["name"] in ("pacification", "rushed_advice"))
    assert not any(i["name"] == "repair-pacification" and i["proposed_threshold"] for i in summary["rules"])


def test_bad_lines_are_refused_with_file_and_line(capsys, tmp_path: Path):
    reviews = _reviews(tmp_path / "reviews.jsonl", 5)
    lines = reviews.read_text().splitlines()
    broken = _write(tmp_path / "broken.jsonl", [])
    broken.write_text("\n".join([lines[0], lines[1], "{not json", *lines[2:]]) + "\n")
    code, _, err = _run(capsys, "--reviews", str(broken), "--policy", str(DEFAULT), "--target-precision", "0.8",
                        "--out", str(tmp_path / "out"))
    assert code == 2 and f"{broken}:3: not valid JSON" in err
    row = json.loads(lines[0])
    del row["labels"]
    unlabelled = _write(tmp_path / "unlabelled.jsonl", [row])
    code, _, err = _run(capsys, "--reviews", str(unlabelled), "--policy", str(DEFAULT), "--target-precision", "0.8")
    assert code == 2 and f"{unlabelled}:1: 'labels' must be an object" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "--reviews", str(reviews), "--policy", str(DEFAULT), "--target-precision", "80"])
    assert exit_info.value.code == 2 and "80 is not a share between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_reads_the_review_console_database_as_its_export(capsys, tmp_path: Path):
    """Reviews stored by the console (SQLite here) give the same calibration read from the database or its export."""
    from sqlalchemy import select

    from app.console.db import Database
    from app.console.export import write_export
    from app.console.ingest import store_records
    from app.console.reviews import record_review
    from app.console.schema import DecisionRow
    from tests.console.records import audit_record

    rng = random.Random(5)
    records = [audit_record(i, 1_800_000_000 + i, rng, texts=False, rule=("none", "allow", "passed")) for i in range(240)]
    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    db = Database(db_url)
    store_records(db, records)
    with db.session() as session:
        rows = list(session.execute(select(DecisionRow.id, DecisionRow.flags)))
    for decision_id, flags in rows:
        flagged = "pacification" in flags.split(",")
        # Reviewers agree with high scores more often than with low ones, so precision rises with the threshold.
        right = rng.random() < 0.75
        mark = ("correct" if right else "false_flag") if flagged else ("missed" if rng.random() < 0.3 else "correct")
        record_review(db, decision_id, "ana", {"pacification": mark})
    export = tmp_path / "reviewed.jsonl"
    with export.open("w") as out:
        assert write_export(db, out) == 240
    db.dispose()
    args = ["--policy", str(DEFAULT), "--target-precision", "0.7"]
    code_db, out_db, err = _run(capsys, "--db-url", db_url, *args, "--out", str(tmp_path / "a"))
    assert code_db == 0, err
    code_file, out_file, _ = _run(capsys, "--reviews", str(export), *args, "--out", str(tmp_path / "b"))
    assert code_file == 0
    assert out_db.replace(str(tmp_path / "a"), "OUT") == out_file.replace(str(tmp_path / "b"), "OUT")
    assert "240 reviewed decisions" in out_db and "  pacification: reply.pacification" in out_db
    code, _, err = _run(capsys, "--db-url", f"sqlite:///{tmp_path / 'missing' / 'x.db'}", *args)
    assert code == 2 and "cannot read reviews from sqlite:///" in err
