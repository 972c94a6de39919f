"""Where a repair call puts the corrective instruction, and how a rewrite shows its draft."""

from __future__ import annotations

from app.repair_prompt import PLACEMENTS, is_repair_request, repair_messages

APP = [{"role": "system", "content": "You are a kind assistant."}, {"role": "user", "content": "I failed my exam."}]


def test_trailing_system_follows_the_conversation() -> None:
    messages = repair_messages(APP, "Reflect first.", None, "trailing_system")
    assert messages[:2] == APP
    assert messages[2] == {"role": "system", "content": "Guidance for your next reply: Reflect first."}


def test_leading_system_goes_after_the_apps_system_prompt() -> None:
    messages = repair_messages(APP, "Reflect first.", None, "leading_system")
    assert [m["role"] for m in messages] == ["system", "system", "user"]
    assert messages[0] == APP[0] and messages[1]["content"].endswith("Reflect first.") and messages[2] == APP[1]


def test_trailing_user_is_a_user_turn() -> None:
    assert repair_messages(APP, "Reflect first.", None, "trailing_user")[-1]["role"] == "user"


def test_a_rewrite_quotes_the_draft_or_shows_it_as_the_assistants_turn() -> None:
    quoted = repair_messages(APP, "Reflect first.", "Study harder.", "trailing_system", "quoted")
    assert quoted[-1]["content"].endswith("Draft reply:\nStudy harder.") and len(quoted) == 3
    own = repair_messages(APP, "Reflect first.", "Study harder.", "trailing_system", "assistant_turn")
    assert own[2] == {"role": "assistant", "content": "Study harder."}
    assert own[3]["content"].startswith("Rewrite your last reply") and "Study harder." not in own[3]["content"]


def test_every_placement_is_recognised_as_a_repair_and_the_apps_messages_are_not() -> None:
    assert not is_repair_request(APP)
    for placement in PLACEMENTS:
        for draft in (None, "Study harder."):
            for shown in ("quoted", "assistant_turn"):
                assert is_repair_request(repair_messages(APP, "Reflect first.", draft, placement, shown))  # type: ignore[arg-type]
