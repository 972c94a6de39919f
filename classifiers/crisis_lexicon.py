"""A recall backstop for the crisis signal: explicit phrases of suicidal intent, self-harm or acute danger.

The learned head reads at most 256 tokens; these patterns read every user turn in full, so a disclosure buried in a long
message is still caught. They are deliberately specific (first person, intent) so that hyperbole such as "this homework is
killing me" does not fire.
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"\b(kill(ing)?|hurt(ing)?|harm(ing)?|cut(ting)?|hang(ing)?|shoot(ing)?|drown(ing)?|starv(e|ing)) my ?self\b",
    r"\bend (it all|my life|my own life)\b",
    r"\btak(e|ing) my (own )?life\b",
    # First person, present: "I'm suicidal", "feeling suicidal", "thinking about suicide". Grief for someone who died by
    # suicide, statistics and essays are not a disclosure.
    r"\b(i'?m|i am|i feel|feeling|i'?ve been|been|getting|get) (so |really |very |kinda |pretty |quite |a bit |a little )?suicidal\b",
    r"\b(think(ing)?|thought|planning|plan) (about|of) (suicide|killing myself)\b",
    r"\bcommit(ting)? suicide\b",
    r"\bsuicide (note|plan)\b",
    r"\b(un ?alive|unaliv(e|ing)) (my ?self|me)\b",
    r"\bkms\b",
    r"\b(want|wanna|going|ready|plan(ning)?) (to|2) die\b",
    r"\bdon'?t want to (be alive|live|wake up|exist)( anymore)?\b",
    r"\b(no|any) (reason|point) (to|in) (live|living|go(ing)? on|wak(e|ing) up)\b",
    r"\b(better off|happier) without me\b",
    r"\bnot be(ing)? (here|around) (anymore|tomorrow)\b",
    r"\bi (just )?(overdosed|od'?d|took an overdose)\b",
    r"\b(took|swallowed|taken) (a (bunch|handful|lot)|all|the whole (bottle|pack)|too many)( of)? (my |the )?(pills|tablets|meds)\b",
    r"\b(i|i'?ve|i have|i'?m|been) (started |starting )?(self[- ]?harm(ing)?|cutting (again|myself))\b",
    r"\b(wrote|writing|left) (a |my )?(suicide |goodbye )?(note|letters?) (to|for) (my )?(family|mum|mom|dad|kids|everyone)\b",
    r"\bgiv(e|ing) (away )?(all )?my (stuff|things|belongings) away\b",
    r"\bgiving away my (stuff|things|belongings)\b",
    r"\b(he|she|they)('s| is| are) (hitting|choking|strangling|beating) me\b",
    r"\b(going|gonna|want) to (kill|hurt|shoot|stab) (him|her|them|someone|people|my (wife|husband|partner|kid|son|daughter))\b(?!.*\b(if|lol|haha)\b)",
]
_CRISIS = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)
# A phrase negated or placed in the past just before it ("I'm not suicidal", "I'm no longer cutting myself", "years ago I
# wanted to die") is no disclosure of current risk; the learned signal still reads the whole turn.
_NEGATED = re.compile(r"(\b(not|never|no longer|nor|used to|years ago|back then|when i was|dont|didnt|wasnt|isnt)|n't)"
                      r"\W+(\w+\W+){0,3}$", re.IGNORECASE)


def crisis_phrase(text: str) -> str | None:
    """The first explicit crisis phrase in text that is not negated or placed in the past, or None."""
    for match in _CRISIS.finditer(text):
        if not _NEGATED.search(text[max(0, match.start() - 60) : match.start()]):
            return match.group(0)
    return None
