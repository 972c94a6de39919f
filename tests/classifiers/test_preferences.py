"""The stated-preference detector on the development examples it was written against (the held-out measurement is
classifiers/data/preferences_eval.jsonl, run by `python -m classifiers.preferences_eval`)."""

from __future__ import annotations

import pytest

from classifiers.preferences import (ADVICE, DIRECT, EXPERTISE, GENTLE, HOTLINES, QUESTIONS, VENTING, Statement,
                                     detect)

STATES = [
    ("I just want to vent", VENTING),
    ("sorry, just venting lol", VENTING),
    ("I just need someone to listen rn", VENTING),
    ("can I vent for a sec?", VENTING),
    ("i dont need solutions i need a hug", VENTING),
    ("I don't want advice", VENTING),
    ("I'm not looking for advice", VENTING),
    ("don't fix it, just listen", VENTING),
    ("you don't have to fix anything", VENTING),
    ("i am so done. no advice pls", VENTING),
    ("ok, now I'd like some ideas", ADVICE),
    ("I don't not want advice", ADVICE),
    ("I don't just want to vent, I want a plan", ADVICE),
    ("any advice?", ADVICE),
    ("give me some ideas pls", ADVICE),
    ("I'm open to suggestions now", ADVICE),
    ("be blunt with me, I hate sugar-coating", DIRECT),
    ("give it to me straight", DIRECT),
    ("no sugarcoating please", DIRECT),
    ("no need to be gentle", DIRECT),
    ("tough love please", DIRECT),
    ("don't be so blunt", GENTLE),
    ("Please be gentle, I'm really fragile right now", GENTLE),
    ("I can't handle harsh criticism right now", GENTLE),
    ("go easy on me please", GENTLE),
    ("I'd rather you ask me questions", QUESTIONS),
    ("help me think it through", QUESTIONS),
    ("please don't give me hotline numbers, I have a counsellor", HOTLINES),
    ("I'm not suicidal, stop sending me 988", HOTLINES),
    ("I'm in therapy already and I'm safe", HOTLINES),
    ("I work as a paramedic", EXPERTISE),
    ("I was a nurse for 20 years", EXPERTISE),
]

STATES_NOTHING = [
    "don't just tell me to vent",          # being told to vent is not a wish to vent
    "My friend just wants to vent",        # someone else
    "she said I need advice",              # someone else's view
    "If I want advice I'll ask",           # a condition, not a wish
    "do you think I should vent to my boss?",
    "Yesterday I just wanted to vent to my mom",
    "I vented to my therapist yesterday",
    "the vent in my bathroom is broken",
    "what should I do?",                   # a request in this turn: the context model's advice_requested
    "Listen, I need the number for the landlord",
    "to be honest I am tired",
    "my boss never sugarcoats anything",
    "stop asking me so many questions",
    "I can't take it anymore",
    "I need a therapist",
    "I used to have a counsellor",
    "I want to be a nurse one day",
    "I'm a nursing student",
    "I'm a big fan of Doctor Who",
    "I'm seeing a doctor",
    "I'm not a doctor",
    "my wife is a nurse",
    "my sister is not looking for advice",
]


@pytest.mark.parametrize(("text", "preference"), STATES)
def test_states(text: str, preference: str) -> None:
    assert preference in [s.preference for s in detect(text)]


@pytest.mark.parametrize("text", STATES_NOTHING)
def test_states_nothing(text: str) -> None:
    assert detect(text) == []


def test_a_crisis_phrase_in_the_same_turn_cancels_declining_hotlines() -> None:
    assert detect("I'm safe at home but I want to die") == []
    assert detect("I'm safe, I promise") == [Statement(HOTLINES)]


def test_the_field_of_a_stated_role() -> None:
    assert detect("I'm a nurse, you can skip the basics") == [Statement(EXPERTISE, "health care")]
    assert detect("I'm a software engineer") == [Statement(EXPERTISE, "technology")]
    assert detect("As a teacher, I see this a lot") == [Statement(EXPERTISE, "teaching")]


def test_of_two_opposites_in_one_turn_the_later_wins() -> None:
    assert detect("I don't want advice. Actually, give me some ideas.") == [Statement(ADVICE)]
    assert detect("Give me ideas. No wait, I just want to vent.") == [Statement(VENTING)]


def test_the_held_out_set_and_its_report() -> None:
    """The set has positives and hard negatives for every preference, and the detector keeps the issue's targets on it
    (a regression guard: a change to the patterns must not be tuned on this set; see its first line)."""
    from classifiers.preferences import PREFERENCES
    from classifiers.preferences_eval import DATA, TARGET_PRECISION, TARGET_RECALL, evaluate, load, report

    items = load(DATA)
    assert len(items) >= 150 and sum(1 for i in items if not i.labels) >= 50
    for name in PREFERENCES:
        assert sum(1 for i in items if name in i.labels) >= 10, name
    counts, _ = evaluate(items)
    assert "| prefers_venting |" in report(items, counts)
    for name, c in counts.items():
        assert c.precision >= TARGET_PRECISION and c.recall >= TARGET_RECALL, (name, c)
