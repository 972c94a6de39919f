"""One label registry: every surface reads its labels from classifiers.labels, and flags have one contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

from app.corrective import BY_LABEL
from app.policy.cel_env import CONTEXT_FIELDS, FLAG_NAMES, REPLY_FIELDS, USER_FIELDS
from app.policy.model import CORRECTIVE_LABELS, CorrectiveLabel
from classifiers import DEFAULT_MODEL_DIR, Scorer
from classifiers.features import CONTEXT_LABELS, REPLY_LABELS
from classifiers.labels import (
    ALL_OUTPUTS,
    CONTEXT_SIGNALS,
    CORRECTIVE,
    CRISIS_UNCERTAIN,
    FLAGS,
    HEADLINE_SCORES,
    REPLY_SCORES,
    derive_reply_scores,
    flags_of,
)

REPO = Path(__file__).resolve().parents[2]


def test_every_surface_uses_the_registry() -> None:
    assert REPLY_LABELS + CONTEXT_LABELS == ALL_OUTPUTS
    assert REPLY_FIELDS == REPLY_SCORES and CONTEXT_FIELDS == CONTEXT_SIGNALS and FLAG_NAMES == FLAGS
    assert CORRECTIVE_LABELS == CORRECTIVE and set(get_args(CorrectiveLabel)) == set(CORRECTIVE)
    assert set(BY_LABEL) == set(CORRECTIVE)


def test_the_policy_schema_lists_the_registry_labels() -> None:
    schema = json.loads((REPO / "policies" / "policy.schema.json").read_text())
    text = json.dumps(schema)
    for label in CORRECTIVE:
        assert f'"{label}"' in text
    for name in USER_FIELDS:  # in the help of `when`
        assert f"user.{name}" in text, name


def test_the_model_has_a_threshold_for_every_flag() -> None:
    thresholds = Scorer(DEFAULT_MODEL_DIR).thresholds
    for name in FLAGS:
        assert name in thresholds, name


def test_derived_sycophancy_is_the_larger_kind() -> None:
    scores = derive_reply_scores({"pacification": 0.1, "sycophancy_epistemic": 0.2, "sycophancy_social": 0.7,
                                  "rushed_advice": 0.3})
    assert scores["sycophancy"] == 0.7
    assert list(scores)[: len(HEADLINE_SCORES)] == list(HEADLINE_SCORES)


def test_flags_contract() -> None:
    thresholds = {"pacification": 0.5, "sycophancy": 0.5, "rushed_advice": 0.5, "distress": 0.5, "crisis": 0.8,
                  "advice_requested": 0.5, CRISIS_UNCERTAIN: 0.3}
    reply = {"pacification": 0.6, "sycophancy": 0.1, "rushed_advice": 0.5}
    assert flags_of(reply, {"distress": 0.9, "crisis": 0.4, "advice_requested": 0.1}, thresholds) == [
        "pacification", "rushed_advice", "distress", CRISIS_UNCERTAIN]
    clear = flags_of(reply, {"distress": 0.9, "crisis": 0.85, "advice_requested": 0.1}, thresholds)
    assert "crisis" in clear and CRISIS_UNCERTAIN not in clear
    assert CRISIS_UNCERTAIN not in flags_of(reply, {"distress": 0.9, "crisis": 0.1, "advice_requested": 0.1}, thresholds)


def test_the_policy_guide_names_every_variable_and_flag() -> None:
    """The guide's variable table is kept in step with the one CEL environment (app.policy.cel_env)."""
    guide = (REPO / "docs" / "policy-guide.md").read_text()
    for name in REPLY_FIELDS:
        assert f"reply.{name}" in guide, name
    for name in CONTEXT_FIELDS:
        assert f"context.{name}" in guide, name
    for name in USER_FIELDS:
        assert f"user.{name}" in guide, name
    for name in FLAG_NAMES:
        assert f"`{name}`" in guide, name


def test_a_review_of_the_combined_sycophancy_speaks_for_its_kinds_only_when_it_says_neither() -> None:
    from classifiers.labels import reviewed_truth

    # Calibration and train-heads read reviews through this one rule, so a threshold and a retrained head agree.
    assert reviewed_truth({"sycophancy": 0}, "sycophancy_social") == 0
    assert reviewed_truth({"sycophancy": 1}, "sycophancy_social") is None  # which kind? unknown
    assert reviewed_truth({"sycophancy": 1, "sycophancy_social": 0}, "sycophancy_social") == 0
    assert reviewed_truth({"sycophancy": 1}, "sycophancy") == 1
    assert reviewed_truth({"pacification": 1}, "rushed_advice") is None
