"""heedful score: the batch-scoring contract other tools depend on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEEDFUL = [sys.executable, "-m", "app.cli"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HEEDFUL, *args], capture_output=True, text=True, input=stdin, timeout=120)


def line(id_: object, user: str, reply: str) -> str:
    return json.dumps({"id": id_, "messages": [{"role": "user", "content": user}], "reply": reply})


def test_scores_every_line_in_order_with_ids_kept(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    ids = [1, "two", {"k": [3]}, None]
    source.write_text("\n".join(line(i, "I'm scared about my biopsy on Friday.", r) for i, r in zip(
        ids, ["Don't worry, I'm sure it's nothing!", "What scares you most about Friday?", "", "🙏"], strict=True)) + "\n")
    out = tmp_path / "out.jsonl"
    result = run("score", "--input", str(source), "--output", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ids
    for row in rows:
        assert set(row["scores"]) == {"pacification", "sycophancy", "rushed_advice"}
        assert set(row["context"]) == {"distress", "crisis", "advice_requested"}
        assert all(0 <= v <= 1 for v in [*row["scores"].values(), *row["context"].values()])
        # One flag contract (classifiers.labels.flags_of): reply scores and context signals at their thresholds.
        assert set(row["flags"]) <= set(row["scores"]) | set(row["context"]) | {"crisis_uncertain"}
    assert "pacification" in rows[0]["flags"] and "pacification" not in rows[1]["flags"]


def test_stdout_when_no_output_is_given(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(line("a", "hi", "hello") + "\n")
    result = run("score", "--input", str(source))
    assert json.loads(result.stdout)["id"] == "a"


@pytest.mark.parametrize(("bad", "problem"), [
    ("{not json", "not valid JSON"),
    (json.dumps({"id": 1, "reply": "x"}), "missing field 'messages'"),
    (json.dumps({"id": 1, "messages": [{"role": "user", "content": "x"}]}), "missing field 'reply'"),
    (json.dumps({"id": 1, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "reply": "z"}),
     "the last message must have role 'user'"),
])
def test_malformed_line_stops_the_run_before_anything_is_written(tmp_path: Path, bad: str, problem: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(line(1, "hi", "hello") + "\n" + line(2, "hi", "hello") + "\n" + bad + "\n")
    out = tmp_path / "out.jsonl"
    result = run("score", "--input", str(source), "--output", str(out))
    assert result.returncode == 2
    assert f"{source}:3:" in result.stderr and problem in result.stderr
    assert not out.exists()


def test_a_json_error_names_its_column(tmp_path: Path, capsys) -> None:
    """The column points at the fault, also on a line with a byte-order mark, so a person can find it."""
    from classifiers.batch import InputLineError, parse_line

    good = '{"id": 1, "messages": [{"role": "user", "content": "' + "x" * 120 + '"}], "reply": "fine"'
    broken = good + ' "extra"}'  # a missing comma after the reply
    column = len(good) + 2
    for line in (broken, "\ufeff" + broken + "\r\n"):
        try:
            parse_line(line, 7)
        except InputLineError as error:
            assert f"at column {column}" in str(error), str(error)
        else:
            raise AssertionError("the broken line parsed")
