"""`heedful train-heads`: clear refusals without texts or labels, and a tiny real run whose model the run time serves."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from app.cli import main
from app.cli.serve import check_startup
from app.config import Settings
from classifiers import Scorer

REPO = Path(__file__).resolve().parents[2]
TEST_SPLIT = REPO / "classifiers" / "data" / "test" / "test.jsonl"
TRAIN_EXTRA = all(importlib.util.find_spec(m) for m in ("torch", "onnx", "sklearn"))


def _export(path: Path, rows: list[dict], texts: bool = True) -> Path:
    """Rows of the shipped test split as a review export: the headline labels and context signals a reviewer marks."""
    with path.open("w") as out:
        for row in rows:
            labels = row["labels"]
            line = {"id": row["id"], "scores": {}, "context": {}, "flags": [], "policy": "default", "tenant": "acme",
                    "labels": {"pacification": labels["pacification"], "rushed_advice": labels["rushed_advice"],
                               "sycophancy": max(labels["sycophancy_epistemic"], labels["sycophancy_social"]),
                               "distress": labels["distress"]},
                    "review": {"reviewer": "ana", "ts": 1, "note": "", "marks": {}}}
            if texts:
                line |= {"messages": row["messages"], "reply": row["reply"]}
            out.write(json.dumps(line) + "\n")
    return path


def _split_rows() -> list[dict]:
    return [json.loads(line) for line in TEST_SPLIT.read_text().splitlines()]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["train-heads", *argv])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_refuses_an_export_without_texts(capsys, tmp_path: Path):
    reviews = _export(tmp_path / "r.jsonl", _split_rows()[:200], texts=False)
    code, _, err = _run(capsys, "--reviews", str(reviews), "--out", str(tmp_path / "model"))
    assert code == 2
    assert "holds no reviewed decision with texts (200 without)" in err and "spec.audit.include_texts: true" in err
    assert not (tmp_path / "model").exists()


def test_refuses_too_few_labels_and_says_how_many_each_label_has(capsys, tmp_path: Path):
    reviews = _export(tmp_path / "r.jsonl", _split_rows()[:30])
    code, _, err = _run(capsys, "--reviews", str(reviews), "--out", str(tmp_path / "model"))
    assert code == 2
    assert "too few labels to train or evaluate anything: every label needs at least 40 positive and 40 negative" in err
    assert "pacification " in err and "+/" in err
    assert not (tmp_path / "model").exists()


@pytest.mark.skipif(not TRAIN_EXTRA, reason="needs the train extra (torch, onnx, scikit-learn); CI installs only the test extra")
def test_tiny_run_writes_a_model_the_proxy_serves(capsys, tmp_path: Path):
    rows = _split_rows()
    positives = [r for r in rows if r["labels"]["pacification"]][:50]
    negatives = [r for r in rows if not r["labels"]["pacification"]][:50]
    reviews = _export(tmp_path / "r.jsonl", positives + negatives)
    out_dir = tmp_path / "acme-v1"
    code, out, err = _run(capsys, "--reviews", str(reviews), "--out", str(out_dir), "--shipped-sample", "20")
    assert code == 0, err
    assert "retraining pacification" in err
    assert "| pacification | " in out and "AUROC shipped | AUROC new" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert "pacification" in metrics["retrained"] and "crisis" not in metrics["retrained"]
    held_out = metrics["held_out_evaluation"]["pacification"]
    assert held_out["n"] == metrics["held_out"] and 0 < held_out["positives"] < held_out["n"]
    for which in ("shipped", "new"):
        assert 0.5 <= held_out[which]["auroc"] <= 1.0
    card = (out_dir / "MODEL_CARD.md").read_text()
    assert "## Evaluation on the held-out reviews" in card and "| pacification |" in card
    # The shipped layout: the proxy starts on it and the run time scores with it; untouched labels keep shipped values.
    assert check_startup(Settings(model_path=out_dir)) is None
    new, shipped = Scorer(out_dir), Scorer()
    messages = [{"role": "user", "content": "I failed my driving test again and I feel useless."}]
    reply = "Don't worry, you'll pass next time! Everyone fails sometimes."
    a, b = new.score(messages, reply), shipped.score(messages, reply)
    # The new head is float where the shipped one was int8, so labels it did not retrain move only a little.
    assert a.context == pytest.approx(b.context, abs=0.05)
    assert new.thresholds["rushed_advice"] == shipped.thresholds["rushed_advice"]
    code, _, err = _run(capsys, "--reviews", str(reviews), "--out", str(out_dir))
    assert code == 2 and "exists and is not empty" in err


def test_reads_the_review_console_database_and_refuses_without_texts(capsys, tmp_path: Path):
    from sqlalchemy import select

    from app.console.db import Database
    from app.console.ingest import store_records
    from app.console.reviews import record_review
    from app.console.schema import DecisionRow
    from tests.console.records import audit_record

    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    db = Database(db_url)
    store_records(db, [audit_record(i, 1_800_000_000 + i, texts=False) for i in range(20)])
    with db.session() as session:
        for decision_id in session.scalars(select(DecisionRow.id)):
            record_review(db, decision_id, "ana", {"distress": "missed"})
    db.dispose()
    code, _, err = _run(capsys, "--db-url", db_url, "--out", str(tmp_path / "model"))
    assert code == 2 and f"{db_url} holds no reviewed decision with texts" in err
