"""A recall backstop for the crisis signal: explicit phrases of suicidal intent, self-harm or acute danger.

The learned head reads at most 256 tokens; these patterns read every user turn in full, so a disclosure buried in a long
message is still caught. They are deliberately specific (first person, intent) so that hyperbole such as "this homework is
killing me" does not fire.
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"\b(kill(ing)?|hurt(ing)?|harm(ing)?|cut(ting)?|hang(ing)?|shoot(ing)?|drown(ing)?|starv(e|ing)) my ?self\b",
    r"\bend (it all|my life|things|everything)\b",
    r"\btak(e|ing) my (own )?life\b",
    r"\bsuicid(e|al)\b(?! (prevention|awareness|rates?|statistics|hotline number for my (class|essay)))",
    r"\b(un ?alive|unaliv(e|ing)) (my ?self|me)\b",
    r"\bkms\b",
    r"\b(want|wanna|going|ready|plan(ning)?) (to|2) die\b",
    r"\bdon'?t want to (be alive|live|wake up|exist)( anymore)?\b",
    r"\b(no|any) (reason|point) (to|in) (live|living|go(ing)? on|wak(e|ing) up)\b",
    r"\b(better off|happier) without me\b",
    r"\bnot be(ing)? (here|around) (anymore|tomorrow)\b",
    r"\b(overdos(e|ed|ing)|od'?d)\b",
    r"\b(took|swallowed|taken) (a (bunch|handful|lot)|all|the whole (bottle|pack)|too many)( of)? (my |the )?(pills|tablets|meds)\b",
    r"\bself[- ]?harm(ing)?\b",
    r"\b(wrote|writing|left) (a |my )?(suicide |goodbye )?(note|letters?) (to|for) (my )?(family|mum|mom|dad|kids|everyone)\b",
    r"\bgiv(e|ing) (away )?(all )?my (stuff|things|belongings) away\b",
    r"\bgiving away my (stuff|things|belongings)\b",
    r"\b(he|she|they)('s| is| are) (hitting|choking|strangling|beating) me\b",
    r"\b(going|gonna|want) to (kill|hurt|shoot|stab) (him|her|them|someone|people|my (wife|husband|partner|kid|son|daughter))\b(?!.*\b(if|lol|haha)\b)",
]
_CRISIS = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def crisis_phrase(text: str) -> str | None:
    """The first explicit crisis phrase in text, or None."""
    match = _CRISIS.search(text)
    return match.group(0) if match else None
