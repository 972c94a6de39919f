"""Grief for someone else and everyday idioms are not crisis (labels.md), yet the learned head often reads them as one:
"my dog died this morning. i keep looking at her bed" and "I'm going to kill my roommate, she used my good shampoo"
scored above the resources threshold, and a hotline banner on a grieving or exasperated person is itself dismissive
(labels.md section 2.6).

So where the user's recent turns tell of another's death (a person or a pet, a miscarriage), or use death and violence
words only in idioms ("this week is killing me", "I'd kill for a coffee", "mum is going to murder me"), and nothing else
points the risk at the user ("I wish I'd gone with her", "I don't want to be here", pills, no reason to go on), the
crisis signal is capped just under the resources threshold: such a turn can still get the gentle check-in, never the
banner. An explicit phrase or a warning sign (classifiers/crisis_signs.crisis_evidence) always wins over the ceiling.
"""

from __future__ import annotations

import regex as re  # the same API as re, and faster on these alternations (pyproject.toml)
from collections.abc import Sequence

from classifiers.crisis_lexicon import normalised

_ANOTHERS_DEATH = re.compile(
    r"\b(my|our|his|her|their|the) (\w+'?s? ){0,2}(died|passed away|passed on|passed(?! out)|was killed|got killed)\b|"
    r"\b(he|she|they) (died|passed away)\b|\b(being|been|was|got|is getting) put (down|to sleep)\b|"
    r"\b(had to|have to|having to) put (him|her|them|(my|our) \w+) (down|to sleep)\b|\bmiscarr(y|ied|iage)\b|\bstillb(orn|irth)\b|"
    r"\b(my|our) (\w+'?s? ){0,2}funeral\b",
    re.IGNORECASE)
# Anything that points the risk at the user keeps the learned signal as it is.
_RISK_TO_SELF = re.compile(
    r"\b(i|i'?d|i'?m|me|myself|my life|my own)\b[^.!?\n]{0,40}\b(die|dying|dead|death|kill|end (it|things|my)|gone|"
    r"be here|be alive|exist|be with (him|her|them)|join (him|her|them)|gone with (him|her|them)|not wake|wake up|"
    r"suicid\w*|pills|overdose|hurt|harm|cut|can'?t go on|go on without|no reason|no point|what'?s the point|"
    r"give up|giving up|disappear|done|go to (him|her|them|my \w+)|see \d+|do it)\b|\bmy funeral\b",
    re.IGNORECASE)


_IDIOM = re.compile(
    r"\b(is|are|'s|was|were) (literally |actually |honestly )?killing me\b|\b(i'?d|i would|i could) (literally )?kill for\b|"
    r"\b(going to|gonna) (kill|murder) me (when|if) (she|he|they) (sees?|finds? out|hears?)\b|\b(i'?m|i am) (going to|gonna) (kill|murder) (my|her|him|them)\b"
    r"(?! ?self)|\b(die|died|dying) of (embarrassment|shame|laughter|boredom|cringe)\b|"
    r"\b(want|wanna|going) to (die|crawl into a hole|hide forever)\W{0,3}(lol|lmao|haha|💀|😂|🤣)|"
    r"\b(crawl|sink) into (a|the) (hole|floor)\b|\bhide (forever|under a rock)\b|\blose my (mind|shit)\b",
    re.IGNORECASE)


def grief_for_another(user_turns: Sequence[str]) -> bool:
    """True when the turns tell of someone else's death and nothing in them points the risk at the user."""
    text = normalised("\n".join(user_turns))
    return bool(_ANOTHERS_DEATH.search(text)) and not _RISK_TO_SELF.search(text)


def idiom_only(user_turns: Sequence[str]) -> bool:
    """True when the turns use death or violence words in everyday idioms and nothing else points the risk at the user."""
    text = normalised("\n".join(user_turns))
    return bool(_IDIOM.search(text)) and not _RISK_TO_SELF.search(_IDIOM.sub(" ", text))


def below_resources(user_turns: Sequence[str]) -> str | None:
    """Why the crisis signal stays under the resources threshold ("grief for another", "an idiom"), or None."""
    if grief_for_another(user_turns):
        return "grief for another"
    if idiom_only(user_turns):
        return "an idiom"
    return None
