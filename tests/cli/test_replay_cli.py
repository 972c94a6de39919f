"""`heedful replay` on a tiny log: summary, skipped lines, comparison and a self-contained HTML report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.cli import main

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
CRISIS = [{"role": "user", "content": "I want to kill myself tonight."}]
CALM = [{"role": "user", "content": "What's the capital of France?"}]


def _log(path: Path) -> Path:
    rows = [{"id": i, "messages": CRISIS if i % 3 == 0 else CALM, "reply": "Paris." if i % 3 else "Don't think like that."}
            for i in range(12)]
    # An audit record with texts; on a crisis turn it always changes outcome between the two policies, so it is shown.
    rows.append({"request_id": "abc", "policy": "default", "rule": "none", "messages": CRISIS, "reply": "Paris <b>!</b>"})
    lines = [json.dumps(r) for r in rows] + ["{not json", json.dumps({"request_id": "x", "rule": "none"})]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_replay_compares_two_policies_and_writes_a_report(capsys, tmp_path: Path, workers):
    other = tmp_path / "no-crisis.yaml"
    other.write_text((POLICIES / "default.yaml").read_text().replace("when: \"'crisis' in flags\"", "when: \"attempt > 5\"")
                     .replace("name: default", "name: no-crisis"))
    report = tmp_path / "r.html"
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", str(_log(tmp_path / "log.jsonl")), "--policy", str(POLICIES / "default.yaml"), "--against", str(other),
              "--report", str(report), "--workers", workers, "--no-progress"])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0
    assert out.startswith("15 lines, 13 replayed, 2 skipped")
    # The 4 crisis lines always reach crisis-resources (the crisis lexicon); calm ones depend on the model.
    assert int(re.search(r"crisis-resources\s+(\d+)\s", out)[1]) >= 4
    # Resources first, then the soothing body is repaired: shown as crisis-resources+repair-pacification.
    assert int(re.search(r"crisis-resources\S* \(\w+\) -> \S+ \(\w+\): (\d+)", out)[1]) >= 4
    assert "skipped 1: audit record without texts (set spec.audit.include_texts) (e.g. line 15)" in out
    html = report.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") >= 10
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html) and "@import" not in html
    assert "Paris &lt;b&gt;!&lt;/b&gt;" in html  # texts are escaped
    assert "Conversations that change outcome" in html


def test_replay_refuses_a_broken_policy(capsys, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((POLICIES / "default.yaml").read_text().replace("mode: enforce", "mode: sometimes"))
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", str(_log(tmp_path / "log.jsonl")), "--policy", str(bad), "--no-progress"])
    assert exit_info.value.code == 2
    assert f"{bad}:" in capsys.readouterr().err


def test_two_versions_of_one_policy_get_distinct_headings(capsys, tmp_path: Path):
    edited = tmp_path / "default.yaml"
    edited.write_text((POLICIES / "default.yaml").read_text().replace("max_attempts: 2", "max_attempts: 3", 1))
    with pytest.raises(SystemExit):
        main(["replay", str(_log(tmp_path / "log.jsonl")), "--policy", str(POLICIES / "default.yaml"), "--against",
              str(edited), "--workers", "1", "--no-progress"])
    out, _ = capsys.readouterr()
    headings = [line for line in out.splitlines() if line.startswith("policy default")]
    assert len(headings) == 2 and headings[0] != headings[1]
    assert str(edited) in headings[1]
