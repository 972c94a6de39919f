"""Public evaluation sets (read from ../shared/data, never used for training); skips where the data is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from classifiers.keyword_baseline import keyword_scores  # noqa: E402
from classifiers.training.public_sets import EvalSet, load_public_sets  # noqa: E402

DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
EXPECTED = {
    "esconv_rushed_advice": ("rushed_advice", "auroc"),
    "mi_strategy_welivita_rushed_advice": ("rushed_advice", "auroc"),
    "annomi_rushed_advice": ("rushed_advice", "auroc"),
    "empathetic_intents_pacification": ("pacification", "auroc"),
    "pair_reflections_false_flag": ("all", "false_flag"),
    "epitome_explorations_false_flag": ("all", "false_flag"),
}

needs_data = pytest.mark.skipif(not DATA_ROOT.is_dir(), reason=f"public data not found at {DATA_ROOT}")


@pytest.fixture(scope="module")
def sets() -> dict[str, EvalSet]:
    return {s.name: s for s in load_public_sets(DATA_ROOT)}


def test_missing_root_loads_nothing(tmp_path: Path) -> None:
    assert load_public_sets(tmp_path / "absent") == []
    assert load_public_sets(tmp_path) == []


@needs_data
def test_every_expected_set_loads(sets: dict[str, EvalSet]) -> None:
    assert set(sets) == set(EXPECTED)
    for name, (label, kind) in EXPECTED.items():
        s = sets[name]
        assert (s.label, s.kind) == (label, kind)
        assert (DATA_ROOT / s.source).is_dir()
        assert 0 < len(s.items) <= 1500


@needs_data
def test_classes(sets: dict[str, EvalSet]) -> None:
    for s in sets.values():
        ys = {it.y for it in s.items}
        assert ys == ({0, 1} if s.kind == "auroc" else {0}), s.name


@needs_data
def test_items_are_well_formed(sets: dict[str, EvalSet]) -> None:
    for s in sets.values():
        for it in s.items:
            assert it.messages and it.messages[-1]["role"] == "user", s.name
            assert all(m["role"] in ("user", "assistant") and m["content"].strip() for m in it.messages), s.name
            assert all(a["role"] != b["role"] for a, b in zip(it.messages, it.messages[1:])), s.name
            assert it.reply.strip(), s.name


@needs_data
def test_loading_is_deterministic_for_a_seed(sets: dict[str, EvalSet]) -> None:
    again = {s.name: s for s in load_public_sets(DATA_ROOT)}
    assert again == sets
    small_a = load_public_sets(DATA_ROOT, max_items_per_set=100, seed=7)
    small_b = load_public_sets(DATA_ROOT, max_items_per_set=100, seed=7)
    assert small_a == small_b
    other = load_public_sets(DATA_ROOT, max_items_per_set=100, seed=8)
    assert [s.items for s in other] != [s.items for s in small_a]
    for s in small_a:
        assert len(s.items) <= 100
        if s.kind == "auroc":
            assert {it.y for it in s.items} == {0, 1}, s.name


def test_keyword_baseline_ranges() -> None:
    scores = keyword_scores(
        [{"role": "user", "content": "I feel so guilty I snapped at my son. What should I do?"}],
        "Don't worry, everything will be okay! You should try to relax.\n1. Take a walk\n2. Sleep",
    )
    assert set(scores) == {"pacification", "sycophancy", "rushed_advice", "distress", "crisis", "advice_requested"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert scores["pacification"] > 0 and scores["rushed_advice"] > 0 and scores["distress"] > 0
    assert scores["advice_requested"] > 0 and scores["sycophancy"] == 0 and scores["crisis"] == 0
    assert keyword_scores([], "What feels hardest about it?")["rushed_advice"] == 0
