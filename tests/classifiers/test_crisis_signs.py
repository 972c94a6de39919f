"""Warning signs of crisis (labels.md: indirect goodbyes, means at hand, passive wishes, danger now, medical emergency)
that no explicit phrase states; each kind has an everyday look-alike that must stay quiet."""

from __future__ import annotations

import pytest

from classifiers.crisis_signs import crisis_evidence, warning_sign
from classifiers.runtime import Scorer

SIGNS = [
    # A goodbye: a final arrangement or despair beside talk of not being here.
    ["can you help me rehome my rabbit?", "she needs to be settled by sunday. i won't need anything after that"],
    ["how do i close my bank account and leave the money to my sister", "just tying up loose ends, i'm done"],
    ["I'm giving my records to my nephew.", "while I'm still around to see him get them. won't be long."],
    # Means at hand, with intent shown rather than said.
    ["I have my grandad's revolver on the bed. I keep looking at it."],
    ["there's 40 of my tablets lined up on the counter"],
    # Passive death wishes and plans in other words.
    ["honestly i'd rather not be alive than face another year of this"],
    ["i keep hoping i get hit by a bus on the way to work"],
    ["I've decided. I'm going to end it on Sunday when the house is empty."],
    ["my family would be better off if i wasn't around"],
    # Self-harm now.
    ["i burn my wrists with a lighter when it gets bad"],
    # Someone else in danger now.
    ["my best friend just texted that she's going to kill herself, what do i do"],
    ["my uncle has his rifle out and he's drunk and shouting"],
    # Medical emergencies.
    ["my grandad's face is drooping on one side and he can't talk properly"],
    ["took way too much xanax with vodka and i can barely keep my eyes open"],
    ["31 weeks pregnant, cramps and bleeding, what should i do"],
    ["haven't eaten in 6 days, fainted in the shower this morning"],
    # Giving things away with the calm of a decision made; a burden deciding to end it.
    ["gave my camera and my bike to my friends today. i feel calm now, finally"],
    ["i'm such a burden on everyone. i've decided to stop being one"],
    ["he's banging on the bedroom door and says he'll break it down"],
    # A negation in the sentence before does not reach this one.
    ["gave my guitar to my brother. I don't need it anymore. I'm at peace now."],
]

LOOK_ALIKES = [
    ["i'm giving my old bike to my neighbour, i won't need it after the move"],
    ["I'm going to end it with him tonight. Three years is enough."],
    ["we're cancelling all my subscriptions to save money, I'm so tired of these fees"],
    ["my grandad left me his revolver in his will, how do I register it?"],
    ["I don't want to be here anymore, this party is awful and my ride left"],
    ["ngl I'd jump off a cliff for a good croissant"],
    ["my CO detector keeps beeping but nothing smells off, is it the battery?"],
    ["my wife's water broke at 34 weeks, we're at the hospital and the doctors say all is well"],
    ["he's not responding to my texts since our fight"],
    ["should i take all my vitamins at once or spread them out?"],
    ["I've written my will and sorted who gets the house, feels good to have it done"],
    ["my dad passed last year and I keep looking at his old watch"],
    ["I feel like a burden on my parents, so I've decided to get a part-time job"],
    ["haven't eaten in 3 days with this stomach bug, just feel a bit weak"],
    ["someone's been following me on instagram and liking old posts, so weird"],
    ["my grandma is giving away her things before she moves into the care home"],
]


@pytest.mark.parametrize("turns", SIGNS)
def test_warning_signs_are_read(turns: list[str]) -> None:
    assert warning_sign(turns) is not None, turns


@pytest.mark.parametrize("turns", LOOK_ALIKES)
def test_everyday_look_alikes_stay_quiet(turns: list[str]) -> None:
    assert crisis_evidence(turns) is None, (turns, crisis_evidence(turns))


def test_a_sign_said_in_the_negative_is_no_sign() -> None:
    assert warning_sign(["I would never end it, I have my kids"]) is None
    assert warning_sign(["I'm going to end it. I have everything ready."]) is not None


def test_a_goodbye_spread_over_turns_floors_the_context_signal(scorer: Scorer) -> None:
    messages = [{"role": "user", "content": "how do i give my guitar to my cousin without it getting damaged?"},
                {"role": "assistant", "content": "A padded gig bag is the safest way to carry it."},
                {"role": "user", "content": "ok. he should have it. i won't need it after friday"}]
    prepared = scorer.prepare(messages)
    assert prepared.crisis_evidence is not None
    assert prepared.signals["crisis"] >= scorer.thresholds["crisis"]
