"""A recall backstop for the crisis signal: explicit phrases of suicidal intent, self-harm or acute danger.

The learned head reads at most 256 tokens; these patterns read every user turn in full, so a disclosure buried in a long
message is still caught. They are deliberately specific (first person, intent) so that hyperbole such as "this homework is
killing me" does not fire.
"""

from __future__ import annotations

import regex as re  # the same API as re, and faster on these alternations (pyproject.toml)

# How many of the user's latest turns the crisis rules read in full (the learned head reads at most 256 tokens).
RECENT_USER_TURNS = 3

# "I want to die" said as a joke or a figure of speech, marked as one in the same message ("so tired i want to die lol.
# not literally", "going to die of embarrassment", a skull emoji): the learned signal still reads it; the lexicon does not
# floor it.
_NOT_JOKING = r"(?!.*(\b(lol|lmao|haha|jk|not literally|of (embarrassment|shame|laughter|boredom|cringe))\b|💀|😂|🤣))"
_NOT_SOMEONE_ELSE = r"(?<!\bhe )(?<!\bshe )(?<!\bit )(?<!\bthey )(?<!\bis )(?<!\bare )(?<!'s )"

_PATTERNS = [
    # Not an accident, a game ("I keep killing myself on this boss") or a habit harming one's health ("it's harming myself").
    r"\b(?<!fall and )(?<!fell and )(?<!it's )(?<!it is )(?<!its )"
    r"((?<!keep )(?<!kept )kill(ing)?|hurt(ing)?|harm(ing)?|cut(ting)?|hang(ing)?|shoot(ing)?|drown(ing)?|starv(e|ing)) my ?self\b"
    r"(?! (shaving|cooking|chopping|on (a|the|some)|by accident|accidentally|at the gym|working out|lifting|or (someone|others|"
    r"anyone)))",
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
    # Said of oneself: "is he going to die??" about a dog that ate a sock is worry, not a disclosure.
    # Not a thing that "makes me want to die" (humidity, a song) or dying of an illness one day.
    r"\b" + _NOT_SOMEONE_ELSE + r"(?<!makes me )(?<!made me )(want|wanna|going|ready|plan(ning)?) (to|2) die\b"
    r"(?! (of|from|one day|someday|eventually|alone|young))" + _NOT_JOKING,
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
    # Passive death wishes are crisis (labels.md): "I hope I don't wake up", "I wish I was dead".
    r"\b(hope|hoping|pray) (that )?i (don'?t|do not|never|won'?t) wake up\b"
    r"(?!\W*(before|until|till|with|early|in time|on time|at \d|for|so hungover))",
    r"\bi wish i (was|were|could be) dead\b",
    r"\b(i'?m|i am|i'?d be|i would be|i'?ll be) better off dead\b",
    r"\bi (just )?wanna die\b" + _NOT_JOKING,
    r"\bi wish i (had never been|was never|wasn'?t) born\b",
    # Looking for a method.
    r"\b(painless|quickest|quick|easiest|easy|fastest|surest) way(s)? to (die|end it|end things|kill (my ?self|yourself)|go(?=\s*($|[.!?,])))",
    r"\bhow many (of )?(my |these |the )?(\w+ )?(pills|tablets|capsules) (would it take|does it take|would kill|to (die|overdose|not wake up|kill))\b",
    # An overdose taken or meant: "took like 15 of my sleeping pills", "take enough that I do not wake up".
    r"\b(took|swallowed|taken) (like |about |around |maybe |over |nearly )?\d\d+ (of )?(my |the |her |his )?(\w+ )?(pills|tablets|capsules)\b",
    r"\btak(e|ing) enough( \w+)? (to|that|so( that)?) (i )?(don'?t|do not|never|won'?t|will not|not) wake up\b",
    # Self-harm in the present: "scratching myself with a compass", "started cutting again".
    r"\b(i'?m |i am |i keep |i (have )?started |started |been )(cutting|scratching|burning|carving|hitting) (my ?self|my (arms?|legs?|wrists?|skin))\b",
    r"\bstarted (cutting|burning|scratching)( my ?self)? again\b",
    # Goodbyes: notes or letters to people "just in case".
    r"\b(writing|wrote|written|left) (goodbye )?(notes|letters) (to|for) (people|everyone|my (family|friends|kids|parents))\b",
    # Abuse happening now: someone hitting the user or the user's family, threatening, breaking in, locking them in.
    r"\b(is|'s|are) (drunk and |high and )?(hitting|beating|choking|strangling|kicking) (me|my (mum|mom|mother|dad|father|sister|brother|baby|kids?))\b",
    r"\b(says|said|saying|threaten(s|ed|ing)?|screaming|screams|yelling|yells|shouting|shouts|texting|texted)( that)? (he|she|they)('ll| will| is going to|'s going to|'s gonna| are going to| gonna)? (kill|hurt|break) (me|us|in|the door|down the door)\b(?!.*\b(if|lol|haha|lmao)\b)",
    r"\bthreaten(s|ed|ing)? to kill me\b(?!.*\b(if|lol|haha|lmao)\b)",
    r"\b(locks?|locked|locking) me in (the house|my room|the room|the flat|the apartment)\b",
    r"\b(going|gonna|want) to (kill|hurt|shoot|stab) (him|her|them|someone|people|my (wife|husband|partner|kid|son|daughter))\b(?! (feelings|chances|pride|career|reputation))(?!.*\b(if|lol|haha)\b)",
]
_CRISIS = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)
# A phrase negated or placed in the past just before it ("I'm not suicidal", "I'm no longer cutting myself", "years ago I
# wanted to die") is no disclosure of current risk; the learned signal still reads the whole turn.
# A negation ends with its sentence: "I don't need them anymore. I am calm now" negates nothing in the second sentence.
_NEGATED = re.compile(r"(\b(not|never|no longer|nor|used to|years ago|back then|when i was|dont|didnt|wasnt|isnt)|n't)"
                      r"[^\w.!?\n]+(\w+[^\w.!?\n]+){0,3}$", re.IGNORECASE)


def normalised(text: str) -> str:
    """Typographic apostrophes as plain ones ("don’t" from a phone keyboard), so one spelling of each pattern serves."""
    return text.replace("\u2019", "'").replace("\u2018", "'")


def first_unnegated(pattern: re.Pattern[str], text: str) -> str | None:
    """The first match of pattern in (normalised) text that is not negated or placed in the past just before it."""
    for match in pattern.finditer(text):
        if not _NEGATED.search(text[max(0, match.start() - 60) : match.start()]):
            return match.group(0)
    return None


def crisis_phrase(text: str) -> str | None:
    """The first explicit crisis phrase in text that is not negated or placed in the past, or None."""
    return first_unnegated(_CRISIS, normalised(text))
