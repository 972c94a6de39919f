"""A user's profile: the newest statement wins, preferences fade over their lifetime, and the distress trend."""

from __future__ import annotations

import pytest

from app.corrective import about_user, instruction_for
from app.users.identity import opted_out, user_id_of, user_key
from app.users.profile import DAY, LIFETIME_S, DistressPoint, Profile, UserView, trend
from classifiers.preferences import ADVICE, DIRECT, EXPERTISE, GENTLE, VENTING, Statement

NOW = 1_800_000_000.0
YEAR = 365 * DAY


def test_the_newest_statement_wins_over_its_opposite() -> None:
    venting = Profile().with_statements([Statement(VENTING)], NOW - 60)
    assert venting.view(NOW, YEAR).preferences[VENTING] > 0.99
    advice = venting.with_statements([Statement(ADVICE)], NOW)
    view = advice.view(NOW, YEAR)
    assert VENTING not in view.preferences and view.preferences[ADVICE] == 1.0
    blunt = Profile().with_statements([Statement(GENTLE)], NOW - 10).with_statements([Statement(DIRECT)], NOW)
    assert set(blunt.stated) == {DIRECT}


def test_a_preference_fades_over_its_lifetime_and_is_gone_after_it() -> None:
    profile = Profile().with_statements([Statement(VENTING)], NOW)
    half = profile.view(NOW + LIFETIME_S[VENTING] / 2, YEAR).variables(None)
    assert half[VENTING] == pytest.approx(0.5, abs=1e-3)
    assert profile.view(NOW + LIFETIME_S[VENTING] + 1, YEAR).variables(None)[VENTING] == 0.0


def test_retention_caps_every_lifetime_and_drops_old_distress() -> None:
    profile = Profile().with_statements([Statement(EXPERTISE, "health care")], NOW - 2 * DAY)
    profile = profile.with_point(DistressPoint(NOW - 2 * DAY, 0.9)).with_point(DistressPoint(NOW, 0.1))
    view = profile.view(NOW, retention_s=DAY)
    assert view.preferences == {} and view.work is None and view.history == (0.1,)


def test_the_trend_is_the_slope_of_distress_per_turn() -> None:
    assert trend([0.1, 0.3, 0.5, 0.7]) == pytest.approx(0.2)
    assert trend([0.8, 0.6, 0.4]) == pytest.approx(-0.2)
    assert trend([0.5, 0.5, 0.5]) == 0.0
    assert trend([0.1, 0.9]) == 0.0  # too few turns to call it a trend
    assert trend([0.9] * 20 + [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]) == pytest.approx(0.1)  # the last 8 turns
    view = UserView({}, None, (0.2, 0.4))
    assert view.variables(0.6)["distress_trend"] == pytest.approx(0.2)  # this turn counts
    assert view.variables(None)["distress_trend"] == 0.0


def test_at_most_16_distress_points_are_kept() -> None:
    profile = Profile()
    for i in range(40):
        profile = profile.with_point(DistressPoint(NOW + i, i / 40))
    assert len(profile.distress) == 16 and profile.distress[-1].distress == 39 / 40


def test_corrective_instructions_say_what_the_user_asked_for() -> None:
    view = Profile().with_statements([Statement(VENTING), Statement(EXPERTISE, "health care")], NOW).view(NOW, YEAR)
    assert "This user has said they want to vent" in about_user(view)
    assert "work in health care" in about_user(view)
    instruction = instruction_for("rushed_advice", {}, None, view)
    assert instruction.index("Replace the solution list") < instruction.index("want to vent") < instruction.index(
        "Keep the facts")
    faded = Profile().with_statements([Statement(VENTING)], NOW).view(NOW + 0.6 * LIFETIME_S[VENTING], YEAR)
    assert about_user(faded) == ""
    assert "This user has said" not in instruction_for("rushed_advice", {}, None)


def test_identity_is_a_keyed_hash_scoped_by_tenant() -> None:
    key = user_key(b"secret", "acme", "user-42")
    assert key == user_key(b"secret", "acme", "user-42") and len(key.digest) == 32 and "user-42" not in key.redis_key
    assert key.digest != user_key(b"secret", "other", "user-42").digest
    assert key.digest != user_key(b"rotated", "acme", "user-42").digest  # a new secret: nobody is found again
    assert user_id_of("from-header", "from-body") == "from-header" and user_id_of(None, " u1 ") == "u1"
    assert user_id_of("", None) is None and user_id_of(None, 42) is None
    assert opted_out("off") and opted_out("OFF ") and not opted_out(None) and not opted_out("on")
