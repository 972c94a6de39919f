"""The instruction-leak detector: meta-text and quoted instructions are caught; ordinary engaged replies are not."""

from __future__ import annotations

import pytest

from app.corrective import instruction_for
from app.leakage import META_TEXT, QUOTES_INSTRUCTION, instruction_leak
from app.scripted_upstream import SCENARIOS

PACIFICATION = instruction_for("pacification", {}, None)


@pytest.mark.parametrize("reply", [
    # What a real small model returned to a regeneration (issue 14).
    "This is an example of how to include your concerns in a message. The message should simply contain the information "
    "you've provided.",
    "Here is a revised reply: It sounds like the silence is hurting.",
    "Here's an improved response that names the emotion. You sound worried.",
    "As an AI, I can't feel what you feel, but that sounds hard.",
    "Revised response:\nThat sounds frightening.",
    "I will follow the guidance and avoid reassurance. That sounds frightening.",
    "The user seems anxious about the results, so I should name the emotion.",
    "In the original draft I told you not to worry.",
    "Without meta-commentary: that sounds frightening.",
    # The same small model with the guidance before the conversation (bench/results/repair.md): the message analysed as
    # a text, its writer in the third person.
    "This is a classic example of the tragic flaw in relationships. The author's desire to avoid her sister is clear.",
])
def test_meta_text_is_caught(reply: str) -> None:
    leak = instruction_leak(reply, PACIFICATION, "I'm scared about my biopsy results on Friday.")
    assert leak is not None and leak.reason == META_TEXT, leak


def test_a_reply_that_copies_the_instruction_is_caught() -> None:
    reply = "It is important to name the specific emotion and what it signals about your situation. Fear is normal."
    leak = instruction_leak(reply, PACIFICATION)
    assert leak is not None and leak.reason == QUOTES_INSTRUCTION
    assert leak.evidence == "name the specific emotion and"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_engaged_replies_pass(scenario) -> None:  # type: ignore[no-untyped-def]
    for reply in (scenario.repaired, scenario.draft):
        assert instruction_leak(reply, PACIFICATION, scenario.user) is None


def test_the_users_own_wording_is_not_held_against_the_reply() -> None:
    user = "Can you look at the draft of my cover letter? I'm nervous about it."
    reply = "The draft of your cover letter opens strongly. What part makes you most nervous?"
    assert instruction_leak(reply, PACIFICATION, user) is None
    assert instruction_leak(reply, PACIFICATION, "Can you look at my cover letter?") is not None


def test_an_author_the_user_names_is_not_the_user_in_the_third_person() -> None:
    user = "We're reading Beloved in class and I feel stupid. What did the author mean by the ghost?"
    reply = "You're not stupid: the author leaves it open on purpose. What did the ghost feel like to you?"
    assert instruction_leak(reply, PACIFICATION, user) is None


def test_advice_about_the_users_own_message_is_not_meta_text() -> None:
    reply = "If you text her, your message should be short and kind: say you miss her and ask how she is."
    assert instruction_leak(reply, PACIFICATION, "My friend hasn't texted me back in a week.") is None


@pytest.mark.parametrize("reply", [
    "This is a new situation for you, and it makes sense that it feels unsettling.",
    "Here's a possible way to think about it: what would you want her to know?",
    "It's an open question whether he meant it that way. How did it land for you?",
    "This is a classic example of how grief can arrive late: nothing about it is wrong.",
])
def test_ordinary_phrasings_near_the_patterns_pass(reply: str) -> None:
    assert instruction_leak(reply, PACIFICATION) is None
