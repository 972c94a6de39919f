"""Warning signs of crisis that no single explicit phrase states (labels.md: indirect goodbyes, giving things away, means
at hand, passive death wishes, immediate danger to someone, a medical emergency).

The learned crisis head misses most of these when the words are ordinary ("she's taking the cat after this week. I
won't need anything anymore"): each cue alone is everyday talk, the combination is a goodbye. So most signs here are
pairs of cues that must both occur in the user's recent turns, and a few single patterns specific enough to stand alone.
Every pattern was checked for hits on the project's non-crisis items and on the public evaluation corpora's user turns
(bench/crisis_signs.py; bench/results/crisis_signs.md); a sign floors the crisis signal exactly as an explicit phrase
(classifiers/crisis_lexicon.py) does, and `crisis_evidence` reads both.
"""

from __future__ import annotations

import regex as re  # the same API as re, and faster on these alternations (pyproject.toml)
from collections.abc import Sequence

from classifiers.crisis_lexicon import crisis_phrase, first_unnegated, normalised

_FLAGS = re.IGNORECASE


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), _FLAGS)


_PERSON = (r"(baby|toddler|infant|newborn|son|daughter|kid|child|mom|mum|mother|dad|father|friend|husband|wife|grandma|"
           r"grandpa|grandmother|grandfather|brother|sister|boyfriend|girlfriend|partner|roommate|he|she)")

# Signs specific enough alone.
_SINGLE = _any(
    # Passive death wishes in words the explicit lexicon does not list.
    r"\bno point (in )?(existing|being alive|living|being here)\b",
    r"\b(wish|wishing) i could (just )?(stop existing|not exist|disappear (forever|for good)|fall asleep (and never|forever))",
    r"\b(want|wanna|going) to (just )?stop existing\b",
    r"\b(wish|wishing|hope|hoping) (that )?(the|my) (plane|car|bus|train) (would |will )?crash",
    r"\bif i (got|get) hit by a (bus|car|truck|train)\b[^.!?]{0,25}\b(good|fine|great|i wouldn'?t mind|wouldn'?t (care|mind))\b",
    r"\b(it would be|it'?d be|would be such a) (fine|fine by me|a relief|such a relief|ok|okay) if (a|the) (truck|car|bus|train)\b",
    r"\bi (just )?wouldn'?t mind (dying|not waking up|if (a|the) (truck|car|bus|train|plane))",
    r"\b(wish|wishing) i('?d| had) died\b",
    r"\b(fine|ok|okay|happy|content) (with )?never waking up\b",
    r"\bhop(e|ing) (not to|to never|to not) wake up\b(?!\W*(before|until|till|early|in time|on time|at \d|for))",
    r"\bi('?ve| have) lived long enough\b",
    r"\bdon'?t want to be here without (him|her|them)\b",
    r"\bnot (being|be) alive (for|by|in|next|much longer)\b",
    r"\b(not going to|won'?t|will not|never going to) (see|make it to) (\d+|my next birthday|next year|christmas|another (year|birthday))\b",
    r"\b(going to|gonna|i'?ll|i will|decided to|deciding to|plan(ning)? to|ready to) end (it|everything)\b"
    r"(?!\W{1,3}(with|between|for (him|her|them|us)|off|early|here|now,? (with|between)))",
    r"\b(plan(ning|ned)?|prepar(e|ing|ed)) (my|for my) (suicide|death)\b",
    r"\b(finish|stop) my (own )?life\b",
    r"\b(gonna|going to|wanna|want to|i'?ll|i will|thoughts of|thinking (of|about)|plan(ning)? to) (just )?off(ing)? my ?self\b",
    r"\b(i'?d|i would) rather (not be alive|be dead|not exist|not wake up)\b",
    r"\bwish i (hadn'?t|had not|didn'?t|did not) (woken|wake) up\b",
    r"\bdon'?t care if i (live or die|die|wake up)\b",
    r"\bdon'?t trust myself (around|with|near) (my |the )?(meds|pills|knives|knife|gun|medication|razors?)\b",
    r"\b(hop(e|ing)|wish(ing)?) (that )?i('?ll| will| would|'?d)? (get|be) (in|into|hit by) (a|an) (car )?(accident|crash|car|bus|truck)",
    r"\b(thinking|thought|think) (about|of) (jumping|not turning the wheel|driving (off|into)|stepping in front)\b",
    r"\b(thinking|thought) (about |of |to )(tak(e|ing)|swallow(ing)?) (all|a bottle|a handful|the whole)\b",
    r"\b(drive|driving) (into|off) (the|a) (river|bridge|lake|sea|cliff)\b|\b(jump|jumping|step|stepping) in front of (a|the) "
    r"(train|truck|bus|car)\b",
    r"\b(everyone|they|people|my family|the world|you)('d| would)? (all )?be better off (if i (wasn'?t|weren'?t|was not|were not|"
    r"was gone|died|didn'?t exist)|with me gone)\b",
    r"\b(sat|sitting|sit) in the (garage|car) with the (car|engine) (running|on)\b",
    r"\bso (that )?(they|she|he|you|my \w+|everyone) (know|knows|understand|understands) it (wasn'?t|isn'?t|was not|is not)"
    r" (their|her|his|your|anyone'?s) fault\b",
    r"\b(leaving|going) for good[^.!?]{0,10}\band i don'?t mean\b",
    # Self-harm now, in words the lexicon does not list.
    r"\bi (burn|cut|carve|scratch|hit|punch|stab) (my ?self|my (arms?|legs?|wrists?|thighs?|skin|stomach|hips?|face))\b"
    r"[^.!?]{0,30}\b(with|until|to punish|when|so|because)\b",
    r"\b(scratch|pick|hit|burn|cut|punch|bang|bite) (at )?(my|myself)( \w+){0,2} until (it|they|i) (bleed|bleeds|bruise|bruises)\b",
    r"\bi cut (again )?(last night|yesterday|today|this morning|tonight)\b",
    r"\bto punish myself\b",
    # Someone else in danger now.
    r"\b(cutting|hurting|burning|harming) (him|her|them)sel(f|ves)\b[^.!?]{0,40}\b(right now|rn|as we speak)\b",
    r"\b(says|said|saying|texting|texted|threaten(s|ed|ing)?)( me)?( that)? (he|she|they)('s| is| are|'re)? "
    r"(going to|gonna|about to|will|wants to) (kill|hurt|end) (him|her|them)sel(f|ves)",
    r"\b(threaten(s|ed|ing)?|trying) to (kill|hurt) (him|her|them)sel(f|ves)\b",
    r"\b(said|says|saying) (that )?i'?m next\b",
    r"\b(going|gonna|about) to (stab|shoot|strangle) me\b",
    r"\b(hitting|beating|punching|choking|kicking|strangling) (me|him|her|them|my (\w+ )?\w+)\b[^.!?]{0,40}\b(right now|rn|as we "
    r"speak)\b",
    r"\b(said|says|texted|sent)( me)? goodbye\b[^\n]{0,80}\b(not answering|won'?t answer|isn'?t answering|not picking up)\b",
    r"\b(holding|waving|pointing|pulled) a (knife|gun)\b[^.!?]{0,40}\b(at me|screaming|yelling|threaten)",
    # A medical emergency.
    r"\b(face|mouth) (is |looks |started )?(drooping|droopy|lopsided)\b",
    r"\blips (look |are |turning |went |look a bit |are a bit )?(blue|purple|grey|gray)\b",
    r"\bnot crying,? not moving\b",
    r"\b" + _PERSON + r"('s| is)? (not|isn'?t|stopped|has stopped) (breathing|responding|responsive)\b(?! to)",
    r"\bthroat (is |feels )?(closing|swelling) (up)?",
    r"\bcrushing (chest )?pain\b",
    r"\bswallowed (a |an |two |some |the )?(magnets?|button batter(y|ies)|batter(y|ies)|bleach|detergent pods?|drain cleaner)\b",
    r"\bbleed(ing)? out from (a|my|the) (wrist|arm|neck|thigh)\b|\bhow long (does|would) it take to (bleed out|die from)\b",
    r"\b(stood|standing|sat|sitting) on (the|a) (ledge|edge of (the|a) (roof|bridge|building|cliff|platform))\b",
    r"\b(is|'s|are) choking\b(?! (on (my|his|her|their) words|up|back))|\bturning (blue|purple)\b",
)

# Pairs: (name of the sign, first cue, second cue); both must occur in the recent user turns.
_MEANS = (r"\b(gun|revolver|shotgun|pistol|rifle|rope|noose|morphine|insulin|razor ?blades?|hose and (duct )?tape|"
          r"(\d+|all|a bottle of|a handful of|a stash of) (of )?(my |the |her |his )?(\w+'?s? ){0,2}(pills|tablets|meds|antidepressants|"
          r"painkillers|capsules)|(tallest|highest) (building|bridge|parking \w+|cliff)s?|roof of|train tracks|knife in my hand)\b")
_INTENT = (r"\bkeep counting (it|them)\b|\bin front of me\b|[.!?,]\s*(it'?s |it was |they'?re )?for me\b|\b(i )?keep looking at (it|them)\b|\b(just |been )?(looking|staring) at "
           r"(it|them)\b|\blook at (it|them) (most|every) (night|day)s?\b|\blooking at (my |the )?(\w+ )?differently\b|"
           r"\bacross my (knees|lap)\b|\bcounted (them )?out\b|\blined (them )?up\b|\bwhich one i'?m going to\b|"
           r"\bone last time\b|\bi'?m done\s*([.!]|$)|\b(tonight|tomorrow|friday|saturday|sunday|this weekend)('s| is) (when|the night|"
           r"the day)\b|\bhow many (\w+ )?(would|will) (it take|be enough|do it)\b|\bwould be enough\b|"
           r"\benough to (not wake|never wake|die|end it)\b|\bhaven'?t loaded it\b|\bcan'?t do this any ?more\b|"
           r"\b(tonight|today) i think i'?m done\b")
_FINAL = (r"\b(won'?t|will not) be (here|around|alive) (next|by|for|after|much longer|long|tomorrow|to see)\b|"
          r"\b(after|when|once) i'?m gone\b|\b(won'?t|will not|don'?t|do not) need (anything|money|my (stuff|things|savings)|"
          r"any of (it|this|my stuff))( any ?more)?\b|\btying up (all )?(the |my )?loose ends\b|"
          r"\b(getting|get|put|putting) my affairs in order\b|\bsaid (all )?my goodbyes\b|\bsaying (my )?goodbyes?\b|"
          r"\bbefore i do it\b|\bsoon i (go|will go|'ll go|join|will join|'ll join|'ll be with) (to )?(my (dad|father|mum|mom|mother|"
          r"husband|wife|son|daughter|brother|sister)|him|her)\b|\bgoodbye,? and thank(s| you)\b|\b(i'?m|i am|i feel|feel(ing)?) (so |weirdly |strangely |finally )?(calm|at peace)( now)?,? finally\b|"
          r"\bfinally (calm|at peace)\b|\bweirdly calm\b|\bat peace (now|with it|with my decision)\b|\btoday'?s my last day\b|\bthis is my last (message|post|night)\b|\bmy last (night|day) (alive|on earth)\b|"
          r"\bleave a mess for\b|\bwhoever (has|finds|gets) to deal with\b|\bi'?m leaving for good\b|"
          r"\bwon'?t need (it|them|this|that|anything) (after|past|beyond) (this week|tonight|today|tomorrow|friday|the weekend)\b|"
          r"\bwhile i'?m still (around|here|alive)\b|\bwon'?t be (long|much longer)\s*([.!]|$)|\bbefore i go\s*([.!]|$)|"
          r"\bmy (own )?funeral\b|"
          r"\b(after|before) (this week|tonight|the weekend|friday)\b[^.!?]{0,30}\b(won'?t|not) (need|be)\b")
_ARRANGE = (r"\b(give|giving|gave|leave|leaving) (away )?(all )?my (\w+'?s )?\w+ (to|away)\b|"
            r"\b(give|giving|gave) (away )?(all )?my [^.!?]{0,40}\bto (my )?(friends?|family|sister|brother|cousin|neighbou?r|"
            r"mum|mom|dad|kids)\b|"
            r"\b(written|wrote|writing|made|updated?) (a |my )?(will|trust)\b|\bwho gets (what|my)\b|\b(give|giving|gave|rehom(e|ing)|find(ing)? (a )?(good )?home for|taking|take|transfer(ring)?) (away )?my (dog|cat|pets?|"
            r"bird|rabbit|fish|car|stuff|things)\b|\b(she'?s|he'?s|they'?re) taking (the|my) (dog|cat|pets?)\b|"
            r"\bcancel(l?ing|l?ed)? (all )?my (subscriptions|accounts|phone|memberships)\b|\bdelet(e|ed|ing) (all )?my "
            r"(socials|accounts|account|insta|instagram|facebook|google account|reddit)\b|\b(transfer|sign over|leave) my \w+( \w+)? to\b|"
            r"\b(set up|write|make|making) (a |my )?(will|trust)\b|\b(sent|send|sending|gave|giving) (all )?my savings\b|"
            r"\blife insurance\b|\bgoodbye (letter|note|message)s?\b|\bpasswords\b|\bautomatic payments\b|\bpet insurance\b")
_DESPAIR = (r"\b(don'?t|do not|can'?t) see the point\b|\b(don'?t|do not|can'?t) see (any |a )?way out\b|\bno point (in )?(anything|going on)\b|\btired of (living|life|being alive|"
            r"this life)\b|\bnobody (would )?(notice|noticed|cares|care|would care)\b|\bfeel(ing)? finished\b|"
            r"\bcan'?t do this any ?more\b|\bi'?m done\s*([.!]|$)")
_DANGER_PERSON = (r"\b(he|she|they|my \w+)('s| is|"
                  r" has| got| just)? ?(got |has |holding |pulled |with )?(out )?(a |his |her |their )?(gun|knife|pistol|rifle)\b")
_DANGER_NOW = (r"\b(had enough|drunk|screaming|threaten\w*|kill|right now|rn|pacing|outside (the|my) door|i'?m (hiding|inside)|"
               r"locked (myself|the door))\b")
_CHEST = r"\bchest (hurts|pain|is (so )?tight|feels like)\b"
_CARDIAC_SIGN = r"\b(arm|jaw) (is |feels )?(numb|tingling|hurts)|\bcold sweat|\bsweating\b|\bcan'?t (breathe|catch my breath)\b"
_VIOLENCE = (r"\bbanging on the (\w+ )?door\b|\bhit me (again )?(tonight|today|just now)\b|\b(threw|pushed|shoved|slammed|choked|punched|kicked) me (into|against|down|to|in)\b|"
             r"\b(punching|smashing) (holes in )?the walls?\b|\bteach me a lesson\b|\b(broke|breaking) into (my|our|the) "
             r"(house|apartment|flat|home|room)\b")
_HIDING_NOW = (r"\b(right now|rn|just now|locked myself in|i'?m (hiding |inside |in the )(closet|bathroom|car|room|bedroom)|"
               r"(is|'s) (pacing|outside|downstairs|coming)|my (nose|lip|head|mouth) is bleeding|door doesn'?t lock|i'?m in the closet|"
               r"i'?m in the car with|he has the keys|(says|said) (he|she)'?(ll| will) break|"
               r"scared (he|she)'?s (gonna|going to) wake|(he|she)'?s asleep now)\b")
_DRUG = (r"\b(drinking|drunk|lithium|tylenol|paracetamol|a bunch of my \w+|fentanyl|heroin|xanax|oxy\w*|opioids?|benzos?|molly|mdma|ecstasy|cocaine|coke|meth|ketamine|ghb|"
         r"sleeping pills|vodka|alcohol)\b")
_OVERDOSE_SIGN = (r"\b((can'?t|barely) (breathe|keep my eyes open|stay awake|wake (him|her) up)|chest (feels |is )?(heavy|tight)|"
                  r"heart (is )?(going|racing|beating|pounding)( like| at)? (\d{3}|so fast)|heart rate (is )?\d{3}|turning blue|"
                  r"seizure|won'?t wake up|unresponsive|passed out and|confused|throwing up|vomiting|can'?t wake (him|her|them))\b")
_STARVING = r"\bhaven'?t (eaten|had (any )?food) (in|for) (\d+|a few|several|three|four|five|six|seven) days\b"
_STARVING_SIGN = r"\b(fainted|passed out|blacked out|heart (is )?(doing weird|racing|skipping|pounding|fluttering)|chest (pain|hurts))"
_FOLLOWED = r"\b(someone|somebody|a (man|guy|car|van))('s| has| is)? (been )?following me\b"
_FOLLOWED_NOW = r"\b(right now|rn|for (like )?\d+ blocks|it'?s dark|still behind me)\b"
_BRIDGE = r"\b(stood|standing|sat|sitting) on (the|a) bridge\b"
_BRIDGE_SIGN = r"\b(don'?t know why i (came back|got down|stepped back|left)|for (an|two|\d+) hours?|thinking about (it|jumping))\b"
_BURDEN = r"\b(i'?m|i am) (such )?a burden\b"
_BURDEN_END = r"\b(decided|ready|going) to (stop being one|stop being a burden|end|not be)\b"
_THEIR_WISH = r"\b(he|she|my \w+) (says|said|keeps saying|told me) (he|she) wants to die\b"
_THEIR_GOODBYE = r"\b(giving|gave|given) away (all )?(his|her) (stuff|things|belongings|possessions)\b"
_PREGNANT = r"\b(pregnant|\d+ weeks|\d+ months along)\b"
_OBSTETRIC = r"\b(bleeding (a lot|heavily|badly|so much)|cramps and bleeding|bleeding and (cramps|pain))\b"
_GAS = r"\b(smells? (strongly )?(like|of) gas|gas leak|carbon monoxide|co (alarm|detector))\b"
_GAS_SIGN = r"\b(headache|dizzy|nause\w*|sleepy|throwing up|passed out|confused)\b"
_FALL = (r"\b(hit|banged|smashed) (his|her|their) head\b|\b(fell|fallen|falling) (from|out of|off) (a |the |our |my )?(\w+ )?(window|balcony|roof|bed|changing table|ladder|"
         r"stairs)\b")
_INJURY = (r"\b(not (crying|moving|breathing|responding|waking)|unresponsive|unconscious|won'?t wake up|looks wrong|"
           r"bone (is )?sticking|bleeding from (the|his|her) (head|ear)|confused|on (warfarin|blood thinners)|"
           r"throwing up|vomiting|seizure)\b")
_TRAPPED = r"\b(took|taken|takes|keeps?|kept) (my|our) passports?\b|\blocked me out\b|\bwon'?t let me (out|leave)\b"
_TRAPPED_DANGER = (r"\b(make (us|me) work|locked (in|inside)|don'?t know the address|-\d+|freezing|no coat|driving (drunk|high)|"
                   r"\d{2,3} (on the highway|mph|km/?h))\b")

_PAIRS: list[tuple[str, re.Pattern[str], re.Pattern[str]]] = [
    (name, re.compile(a, _FLAGS), re.compile(b, _FLAGS)) for name, a, b in (
        ("means at hand", _MEANS, _INTENT),
        ("a goodbye", _FINAL, _ARRANGE),
        ("a goodbye", _FINAL, _DESPAIR),
        ("a weapon and danger now", _DANGER_PERSON, _DANGER_NOW),
        ("violence now", _VIOLENCE, _HIDING_NOW),
        ("an overdose", _DRUG, _OVERDOSE_SIGN),
        ("a heart attack", _CHEST, _CARDIAC_SIGN),
        ("an obstetric emergency", _PREGNANT, _OBSTETRIC),
        ("a gas leak", _GAS, _GAS_SIGN),
        ("a fall with injury", _FALL, _INJURY),
        ("held or trapped", _TRAPPED, _TRAPPED_DANGER),
        ("starvation", _STARVING, _STARVING_SIGN),
        ("followed now", _FOLLOWED, _FOLLOWED_NOW),
        ("on a bridge", _BRIDGE, _BRIDGE_SIGN),
        ("a burden ending", _BURDEN, _BURDEN_END),
        ("someone else's goodbye", _THEIR_WISH, _THEIR_GOODBYE),
    )
]
# Danger and emergencies told as a story from the past ("when she was about 4 she fell and hit her head") are no sign.
_STORY = re.compile(r"\b(when (i|he|she|they) (was|were) (about |around |a )?(\d+|little|a (kid|child|baby|teenager))|years ago|"
                    r"as a (kid|child)|last (year|month|summer)|she was fine|he was fine|(she|he) recovered)\b", _FLAGS)
_EVENTS_NOW = {"a weapon and danger now", "violence now", "an overdose", "a heart attack", "an obstetric emergency", "a gas leak",
               "a fall with injury", "held or trapped", "starvation", "followed now"}


def warning_sign(user_turns: Sequence[str]) -> str | None:
    """A short description of the first warning sign in the user's recent turns (read together), or None."""
    text = normalised("\n".join(user_turns))
    if (single := first_unnegated(_SINGLE, text)) is not None:
        return single.strip()
    for name, first, second in _PAIRS:
        if name in _EVENTS_NOW and _STORY.search(text):
            continue
        if (a := first_unnegated(first, text)) is not None and (b := first_unnegated(second, text)) is not None:
            return f"{name}: {a.strip()!r} + {b.strip()!r}"
    return None


def crisis_evidence(user_turns: Sequence[str]) -> str | None:
    """What floors the crisis signal: an explicit phrase in one of the user's recent turns (newest first), else a warning
    sign read across them."""
    phrase = next((p for t in reversed(user_turns) if (p := crisis_phrase(t))), None)
    return phrase if phrase is not None else warning_sign(user_turns)
