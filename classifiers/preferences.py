"""How the user wants to be met, in their own words: a small pattern detector for stated preferences and facts.

The classifier has no output for these, and retraining it is not part of this release, so this is a documented rule
set (docs/user-memory.md) measured on a held-out written set (classifiers/data/preferences_eval.jsonl,
`python -m classifiers.preferences_eval`). It reads one user turn and returns what the user says about themselves
*now*: first person ("I just want to vent") or an instruction to the assistant ("be blunt"), present wishes only.

Each turn is normalised (case, apostrophes, contractions, chat shorthand) and split into clauses at sentence ends,
commas, semicolons and "but". A cue matches within one clause, and then:
- negation is read from the words between the subject and the verb ("I do not want advice", "I don't not want
  advice") or before an instruction ("don't be so blunt"): an odd number of negations gives the cue's `negated`
  preference (not wanting advice is wanting to vent; "don't be blunt" asks for gentleness) or nothing;
- a clause that reports someone else ("she said I need advice"), a condition or a question about the wish ("if I want
  advice I'll ask", "do you think I need advice") states nothing;
- hotline statements are dropped when the same turn holds an explicit crisis phrase (classifiers/crisis_lexicon.py):
  "I'm safe at home but I want to die" is not a request to stop sending resources.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from classifiers.crisis_lexicon import crisis_phrase
from classifiers.labels import USER_PREFERENCES

VENTING, ADVICE, DIRECT, GENTLE, QUESTIONS, HOTLINES, EXPERTISE = (
    "prefers_venting", "wants_advice", "prefers_directness", "prefers_gentleness", "prefers_questions",
    "declines_hotlines", "states_expertise")
PREFERENCES = (VENTING, ADVICE, DIRECT, GENTLE, QUESTIONS, HOTLINES, EXPERTISE)
assert PREFERENCES == USER_PREFERENCES, "the detector's preferences are the label registry's, in its order"
# Stating one retracts the other: the newest statement wins.
OPPOSITES = {VENTING: ADVICE, ADVICE: VENTING, DIRECT: GENTLE, GENTLE: DIRECT}


@dataclass(frozen=True)
class Statement:
    preference: str
    field: str | None = None  # states_expertise: the field of work ("health care")


# --- Normalising -----------------------------------------------------------------------------------------------------

_REWRITES = [(re.compile(p), r) for p, r in (
    (r"[’‘`´]", "'"),
    (r"\b(can'?t|cannot)\b", "can not"), (r"\bwon'?t\b", "will not"), (r"\bdon'?t\b", "do not"),
    (r"\bdoesn'?t\b", "does not"), (r"\bdidn'?t\b", "did not"), (r"\bisn'?t\b", "is not"), (r"\baren'?t\b", "are not"),
    (r"\bwasn'?t\b", "was not"), (r"\bshouldn'?t\b", "should not"), (r"\bwouldn'?t\b", "would not"),
    (r"\bhaven'?t\b", "have not"), (r"\bhasn'?t\b", "has not"), (r"\bcouldn'?t\b", "could not"), (r"n't\b", " not"),
    (r"\bi'?m\b", "i am"), (r"\bi'd\b", "i would"), (r"\bi'?ve\b", "i have"), (r"\bi'll\b", "i will"),
    (r"\byou'?re\b", "you are"), (r"\bthat'?s\b", "that is"), (r"\bit'?s\b", "it is"),
    (r"\bwanna\b", "want to"), (r"\bgonna\b", "going to"), (r"\bgotta\b", "have to"), (r"\bkinda\b", "kind of"),
    (r"\b(pls|plz|plez|pleeease|pleease|pleas)\b", "please"), (r"\bu\b", "you"), (r"\bur\b", "your"),
    (r"\brn\b", "right now"), (r"\btbh\b", "to be honest"), (r"\bidk\b", "i do not know"), (r"\bimo\b", "in my opinion"),
    (r"\bsugar[- ]?coat", "sugarcoat"), (r"\bcounselor", "counsellor"), (r"\bcounseling\b", "counselling"),
    (r"\bhelp ?lines?\b", "helpline"), (r"\bhot ?lines?\b", "hotline"), (r"&", " and "),
)]
_CLAUSE_BREAK = re.compile(r"[.!?;:\n]+|,|\s-+\s|\s—\s|\bbut\b|\bthough\b|\(|\)")


def normalise(text: str) -> str:
    out = text.lower()
    for pattern, replacement in _REWRITES:
        out = pattern.sub(replacement, out)
    return re.sub(r"[ \t]+", " ", out)


def clauses(text: str) -> list[str]:
    return [c.strip(" \"'*_~") for c in _CLAUSE_BREAK.split(normalise(text)) if c.strip(" \"'*_~")]


# --- Cues ------------------------------------------------------------------------------------------------------------

# Words that may stand between "I" and the verb; negations among them are counted.
_ADVERB = (r"do|does|am|really|just|only|honestly|actually|kind of|sort of|seriously|truly|simply|still|also|genuinely|"
           r"definitely|not|never|no longer|would|right now|now|think i|guess i|feel like i|so|mostly|desperately|"
           r"totally|literally|rather|much|more|could|might|will|ok|okay|kind of just|at least|for now|for once|"
           r"mainly|basically|already")
PRE = rf"(?P<pre>(?:(?:{_ADVERB})\s+){{0,5}})"
# What may come before an instruction at the start of a clause; negations among them are counted.
_LEAD = (r"please|just|now|so|ok|okay|and|also|then|honestly|seriously|hey|can you|could you|would you|will you|"
         r"you can|you could|you may|feel free to|go ahead and|i need you to|i want you to|i would like you to|"
         r"i would rather you|i would prefer (?:it )?if you|i would prefer you|i would appreciate it if you|"
         r"i am asking you to|i am begging you to|i ask that you|do not|never|no need to|there is no need to|"
         r"you do not (?:have|need) to|try not to|try to|do|really|for once|from now on|this time|for now|right now")
IMP = rf"(?:^|\bplease\s+)(?P<pre>(?:(?:{_LEAD})\s+){{0,5}})"
_NEGATIONS = re.compile(r"\b(not|never|no longer|no need)\b")
_HYPOTHETICAL = re.compile(r"\b(if|whether|unless|when|whenever|once|should i|do you think|would it|is it normal|"
                           r"why do i|how do i|used to|wondering|wonder)\b")
_REPORTING = re.compile(r"\b(?:said|says|told|tells|thinks|think|asked|asks|believes|claims|keeps saying|wants|needs)\b")


@dataclass(frozen=True)
class Cue:
    pattern: re.Pattern[str]
    preference: str | None  # what the cue states when not negated
    negated: str | None  # what it states when negated (None: nothing)
    field: str | None = None


def _cue(pattern: str, preference: str | None, negated: str | None = None) -> Cue:
    return Cue(re.compile(pattern), preference, negated)


_ADVICE_NOUN = (r"(?:(?:some|any|your|a few|more|practical|concrete|real|actual|honest|good|specific|helpful|"
                r"little|quick)\s+){0,3}(?:advice|ideas|suggestions|solutions|tips|options|a plan|plans|a strategy|"
                r"strategies|next steps|steps|pointers|recommendations|guidance|input|fixes|a fix|a game plan|"
                r"action items|an action plan|help figuring (?:this |it )?out)\b")
_VENT = r"(?:vent|rant|get (?:this|it|some things|something|all this) off my chest|be heard|be listened to|let it out|let off steam|blow off steam|complain|talk it out)"

@functools.cache
def cues() -> tuple[Cue, ...]:
    """The cues, compiled on first use: a process that never reads a user turn (the CLI, a proxy before its first
    request with a user) does not pay for compiling them, about a tenth of the proxy's start-up."""
    return (
        # --- venting, not advice
        _cue(rf"\bi {PRE}(?:want|need|would like|would love|have|got|just want|just need) (?:to )?(?:just |only |really )?{_VENT}\b", VENTING),
        _cue(rf"\bi {PRE}(?:just|only|really) (?:wanted|needed) to (?:just )?{_VENT}\b", VENTING),
        _cue(r"\bi (?:am|was) (?:just |only |really |kind of |literally )?(?:venting|ranting)\b(?! to\b)", VENTING),
        _cue(r"^(?:(?:sorry|ok|okay|so|anyway|honestly|this is|warning|sorry for|mostly)\s+){0,3}(?:just )?(?:venting|ranting|a vent|a rant)\b(?! to\b)", VENTING),
        _cue(r"^(?:\w+\s+)?(?:rant|vent|venting|ranting) (?:incoming|ahead|warning|time|alert|post|session)\b", VENTING),
        _cue(rf"\b(?:let me|can i|could i|may i|mind if i|is it ok if i|is it okay if i|do you mind if i) (?:just |quickly |please )?{_VENT}\b(?! to (?!you\b))", VENTING),
        _cue(rf"\bi {PRE}(?:want|need|would like|would love|could use) (?:you |someone |somebody )?(?:to )?(?:just )?(?:listen|to listen|an ear|a listening ear|someone to listen|someone to talk to|to be listened to)\b", VENTING),
        _cue(rf"{IMP}just (?:listen|hear me out)(?: to me)?(?! to (?!me\b))(?:$| (?:for|without|please|and|to me|instead|ok|okay))", VENTING),
        _cue(r"^(?:(?:please|can you|could you|would you|will you|i need you to|i want you to)\s+)+(?:just )?(?:listen|hear me out)\b(?! to (?!me\b))", VENTING),
        _cue(r"^(?:please )?hear me out\b", VENTING),
        _cue(rf"{IMP}(?:try to |just )?(?:fix|solve) (?:it|this|that|anything|everything|me|my problems?|my life)\b", None, VENTING),
        _cue(r"^(?:please |just |and )?(?:no|without) (?:more )?(?:advice|solutions|fixing|fixes|suggestions|tips|lectures?|lecturing|to-?do lists?)\b(?! (?:helped|helps|works|worked|has|is|was|will)\b)", VENTING),
        _cue(r"\b(?:spare me|skip|hold) the (?:advice|solutions|lecture|tips|fixes|suggestions|to-?do list)\b", VENTING),
        _cue(r"\bi am not (?:really |just )?(?:here for|after) (?:advice|solutions|fixes|a fix|tips|suggestions|a lecture|a plan)\b", VENTING),
        _cue(r"\bi am not trying to (?:fix|solve) (?:it|this|anything)\b", VENTING),
        # --- advice, ideas (negated: no advice, which is venting)
        _cue(rf"\bi {PRE}(?:want|need|would like|would love|would appreciate|could use|am looking for|looking for|am asking for|asking for|am open to|open to|am ready for|ready for|welcome|would welcome|prefer|would prefer) {_ADVICE_NOUN}", ADVICE, VENTING),
        _cue(rf"{IMP}(?:give|offer|throw|send|suggest|tell|share|hit) (?:me |us )?{_ADVICE_NOUN}", ADVICE, VENTING),
        _cue(rf"{IMP}(?:tell me|show me) (?:what (?:to do|i should do|i can do)|how to (?:fix|handle|deal with|solve) (?:it|this|that))\b", ADVICE, VENTING),
        _cue(rf"{IMP}help me (?:figure out|work out|decide|plan|fix|solve|come up with|find a way|sort out) (?:what|how|it|this|a|which|the|my)\b", ADVICE),
        _cue(rf"\bi {PRE}(?:want|need|would like) (?:to (?:figure|work) out|to know|you to help me (?:figure|work) out|help (?:figuring|working) out) (?:what to do|what i should do|how to (?:fix|handle|deal with|solve))\b", ADVICE),
        _cue(rf"\bi {PRE}(?:want|need|would like) to (?:fix|solve) (?:this|it|the problem)\b", ADVICE),
        _cue(r"^(?:so |ok |okay |then |any )?(?:got |have you got |do you have )?any (?:advice|ideas|suggestions|tips|pointers|recommendations)\b", ADVICE),
        _cue(r"\b(?:advice|ideas|suggestions|tips|pointers|recommendations) (?:are |is |would be )?(?:welcome|appreciated|very welcome|much appreciated|would help)\b", ADVICE),
        _cue(r"\bi am (?:ready|open) (?:for|to) (?:some |any |hearing |hear )?(?:advice|ideas|suggestions|solutions|options|tips|next steps)\b", ADVICE),
        # --- directness (negated: gentleness)
        _cue(rf"{IMP}be (?:(?:so|too|brutally|completely|totally|really|100%|fully|very|more|painfully|straight up|dead)\s+)?(?:blunt|direct|straight|frank|harsh|honest|straightforward|candid|brutal|real|upfront)(?: with me| about it| about this|$| please| here| and)", DIRECT, GENTLE),
        _cue(rf"{IMP}(?:give it to me|tell me|say it|tell it) (?:straight|plainly|bluntly|directly|honestly|like it is|as it is|the (?:hard|honest|brutal|blunt) truth|straight up)\b", DIRECT),
        _cue(rf"{IMP}(?:hold back|pull (?:any |your )?punches|spare my feelings|mince words|cushion it|soften it|soften the blow|tiptoe around)\b", None, DIRECT),
        _cue(r"(?:^|\bplease |\bjust )(?:do not|never|stop|quit|no need to)(?: \w+){0,2} sugarcoat", DIRECT),
        _cue(r"\b(?:no|without|zero|minus the|skip the|spare me the|cut the) (?:any |the )?(?:sugarcoat|fluff|pleasantries|niceties|cushioning|padding)", DIRECT),
        _cue(rf"\bi {PRE}(?:hate|dislike|can not stand|am tired of|am sick of|do not like|do not want|do not need|would rather you did not|would rather you not)(?: \w+){{0,4}} (?:sugarcoat|fluff|being coddled|coddling|being babied|cushioning|being handled with kid gloves)", DIRECT),
        _cue(rf"\bi {PRE}(?:want|need|would like|prefer|would prefer|like|appreciate|value|would appreciate|am asking for|asking for) (?:the |your |an? |some )?(?:brutal|honest|blunt|harsh|unfiltered|straight|direct|raw|brutally honest|hard|no-bs|no bs|unvarnished) (?:truth|feedback|opinion|answer|take|assessment|critique|answers|opinions|version)\b", DIRECT, GENTLE),
        _cue(rf"\bi {PRE}(?:want|need|would like|prefer|would prefer|like|appreciate|value|would appreciate|respond better to|do better with) (?:some )?(?:honesty|directness|bluntness|straight talk|tough love|blunt answers|direct answers|people being blunt|people being direct|it blunt|it straight)\b", DIRECT, GENTLE),
        _cue(r"^(?:please )?stop being (?:so |this )?(?:gentle|nice|soft|careful|diplomatic|polite|vague|wishy-washy)\b", DIRECT),
        _cue(r"^(?:please )?stop being (?:so |this )?(?:blunt|harsh|mean|brutal|critical|cold)\b", GENTLE),
        _cue(rf"\bi {PRE}can (?:take|handle) (?:it|criticism|the truth|harsh feedback|honest feedback|bad news|tough love|blunt feedback)\b", DIRECT, GENTLE),
        _cue(rf"{IMP}(?:rip|tear) (?:it|this|my \w+) (?:apart|to shreds)\b", DIRECT),
        _cue(r"^(?:tough love|brutal honesty|blunt(?:ly)?|straight talk|honesty)(?: please| only| is fine| is ok| please)$", DIRECT),
        _cue(r"\bno need to be (?:nice|gentle|polite|diplomatic|soft|kind|careful)\b", DIRECT),
        # --- gentleness (negated: directness)
        _cue(rf"{IMP}(?:be|go) (?:(?:very|extra|a bit|a little|really|more)\s+)?(?:gentle|easy|soft|kind|nice|patient|gentler|softer|kinder|nicer)(?: on me| with me| to me| please| about it|$| here| and| today| right now)", GENTLE, DIRECT),
        _cue(rf"\bi {PRE}(?:need|want|would like|would appreciate|could use) (?:some |a little |a bit of )?(?:gentleness|kindness|softness|patience|compassion|tenderness|a gentle (?:touch|approach)|you to be (?:gentle|kind|soft|nice|patient))\b", GENTLE),
        _cue(r"\bi am (?:(?:really|very|so|pretty|a bit|a little|kind of|feeling|quite)\s+){0,2}(?:fragile|raw|delicate)\b", GENTLE),
        _cue(rf"\bi {PRE}(?:can not|could not|am not able to) (?:handle|take|deal with|cope with) (?:(?:harsh|blunt|tough|brutal|any|negative|more|too much) )?(?:criticism|feedback|words|honesty|truth|love|judgement|judgment|bluntness)\b", GENTLE),
        _cue(rf"{IMP}(?:be (?:too |so )?(?:harsh|hard on me|brutal|mean|critical|judgy|judgmental|judgemental)|judge me|lecture me|yell at me|scold me)\b", None, GENTLE),
        _cue(r"^(?:gently|softly|kindly)(?: please)?$", GENTLE),
        # --- questions rather than answers
        _cue(rf"{IMP}(?:just )?ask me (?:some |more |a few |good |open |the right )?(?:questions|things|stuff)\b", QUESTIONS),
        _cue(rf"\bi {PRE}(?:prefer|would prefer|would rather|like|like it|love it|want|need|would like|find it helpful|find it more helpful)(?: it)?(?: if| when)? (?:you )?(?:ask(?:ing)? (?:me )?(?:questions|things)|questions\b|(?:to )?(?:figure|work|think) (?:it|this|things) (?:out|through) (?:myself|on my own|for myself)|help (?:thinking|to think) (?:it |this |things )?through)", QUESTIONS),
        _cue(rf"{IMP}help me (?:think|talk|reason) (?:it |this |things |that )?through\b", QUESTIONS),
        _cue(r"\b(?:ask|asking) (?:me )?(?:questions|things)? ?(?:instead of|rather than) (?:telling|giving)\b", QUESTIONS),
        _cue(r"\b(?:socratic|coach me|guide me with questions)\b", QUESTIONS),
        # --- safe, has support: do not repeat hotline numbers
        _cue(r"(?:^|\bplease |\bjust |\band )(?:do not|stop|quit|no need to|you do not (?:have|need) to|no more) (?:\w+ ){0,2}(?:give|giving|send|sending|post|posting|list|listing|mention|mentioning|repeat|repeating|suggest|suggesting|throw|throwing|paste|pasting|tell me to call|telling me to call|with the|the) (?:me )?(?:the |any |more |those |another |these |all the |that )?(?:suicide |crisis |mental health |emergency )?(?:hotline|helpline|crisis line|lifeline|988|samaritans|(?:suicide|crisis|emergency|hotline|helpline) (?:numbers?|lines?|resources)|resources)", HOTLINES),
        _cue(r"^(?:please |and )?no more (?:hotline|helpline|crisis line|988|(?:suicide|crisis|hotline|helpline|emergency) (?:numbers?|lines?|resources))", HOTLINES),
        _cue(r"\bi (?:do not|really do not|honestly do not) (?:need|want) (?:a |the |any |another |more |your )?(?:suicide |crisis )?(?:hotline|helpline|crisis line|lifeline|988|numbers?)\b", HOTLINES),
        _cue(r"\bi (?:already )?(?:have|know|saved|have saved) (?:the |those |all the |a |your )?(?:suicide |crisis )?(?:hotline|helpline|crisis line|988)(?: numbers?)?\b", HOTLINES),
        _cue(r"\bi (?:am|am really|am honestly|am totally|am completely|am perfectly|am actually|promise i am|swear i am|really am|am physically) (?:safe|not in danger|not suicidal|not at risk|not in crisis|not in any danger)\b(?! (?:driver|bet|choice|place|space|to say|enough|from))", HOTLINES),
        _cue(r"\bi am not (?:going to|gonna|planning to|about to|trying to) (?:hurt|kill|harm) myself\b", HOTLINES),
        _cue(r"\bi am not (?:going to|planning to|about to) do anything (?:stupid|drastic|dangerous|to myself)\b", HOTLINES),
        _cue(r"\bi (?:already )?(?:have|see|am seeing|have been seeing|talk to|go to|am working with|have a session with|am in|am already in|have an appointment with) (?:a |my |an |the )?(?:therapist|counsellor|psychologist|psychiatrist|support worker|care team|therapy|counselling|treatment|crisis team|psych|support team|gp who)\b", HOTLINES),
    )

# Roles and the field they belong to; the longest names come first so "physical therapist" is health care.
_FIELDS = {
    "health care": ("nurse practitioner", "registered nurse", "nurse", "doctor", "physician", "gp", "paramedic", "emt",
                    "pharmacist", "surgeon", "midwife", "dentist", "medic", "physiotherapist", "physical therapist",
                    "occupational therapist", "rn", "md", "anesthesiologist", "anaesthetist", "radiologist",
                    "oncologist", "pediatrician", "paediatrician", "cardiologist", "dietitian", "clinician",
                    "medical doctor", "er doctor", "icu nurse", "hospice nurse", "resident physician"),
    "mental health": ("psychotherapist", "psychologist", "psychiatrist", "therapist", "counsellor", "social worker",
                      "mental health nurse", "mental health worker", "mental health professional", "crisis worker"),
    "law": ("lawyer", "attorney", "solicitor", "barrister", "paralegal", "judge", "public defender", "prosecutor"),
    "technology": ("software engineer", "software developer", "web developer", "developer", "programmer",
                   "data scientist", "sysadmin", "devops engineer", "engineer"),
    "finance": ("accountant", "cpa", "financial advisor", "financial adviser", "financial planner", "banker",
                "bookkeeper", "auditor"),
    "teaching": ("teacher", "professor", "lecturer", "tutor", "teaching assistant"),
}
FIELDS = tuple(_FIELDS)  # the fields of work states_expertise can name
_ROLE_FIELD = {role: field for field, roles in _FIELDS.items() for role in roles}
_ROLE_NAMES = "|".join(sorted(map(re.escape, _ROLE_FIELD), key=len, reverse=True))
_FILLER = r"(?:(?!not\b|never\b|no\b|student\b|wannabe\b|aspiring\b|future\b|trainee\b|fan\b|of\b|patient\b)[a-z-]+ ){0,3}"
_ROLE = re.compile(
    rf"(?:\bi (?:am|was|have been|used to be|work as|worked as|am working as|have worked as|trained as|qualified as|"
    rf"am a practicing|am a practising)|^as|^speaking as|\bi am also) (?:a|an) {_FILLER}(?P<role>{_ROLE_NAMES})s?\b(?!'s|s'| student| school|-to-be| to be)")
_WORK_IN = re.compile(
    r"\bi (?:work|have worked|worked|have been working|am working) (?:in|as part of) (?:the )?(?P<area>health ?care|"
    r"nursing|medicine|emergency medicine|an? (?:er|icu|hospital|emergency room|clinic)|mental health|psychiatry|"
    r"law|a law firm|tech|software|finance|accounting|education|a school)\b")
_AREA_FIELD = {"health care": "health care", "healthcare": "health care", "nursing": "health care",
               "medicine": "health care", "emergency medicine": "health care", "mental health": "mental health",
               "psychiatry": "mental health", "law": "law", "a law firm": "law", "tech": "technology",
               "it": "technology", "software": "technology", "finance": "finance", "accounting": "finance",
               "education": "teaching", "a school": "teaching"}
_TIME_PAST = re.compile(r"\b(yesterday|last (?:week|night|month|year|time)|ago|back then|at the time|before that|earlier today)\b")


def _negations(pre: str) -> int:
    return len(_NEGATIONS.findall(pre))


def _reported(lead: str) -> bool:
    """Someone else's words, view or wish: "she said", "my mom thinks" (the user's own "I said" is kept)."""
    return any("i" not in lead[: m.start()].split()[-3:] for m in _REPORTING.finditer(lead))


def _statement(cue: Cue, match: re.Match[str], clause: str) -> str | None:
    lead = clause[: match.start()]
    if _HYPOTHETICAL.search(lead) or _reported(lead) or _TIME_PAST.search(lead):
        return None
    pre = match.groupdict().get("pre") or ""
    if _HYPOTHETICAL.search(pre):
        return None
    # A negation just before the clause's cue ("it is not that i want advice") counts with the ones inside it.
    negated = (_negations(pre) + _negations(lead[-12:])) % 2 == 1
    return cue.negated if negated else cue.preference


def _expertise(clause: str) -> str | None:
    for pattern in (_ROLE, _WORK_IN):
        for match in pattern.finditer(clause):
            lead = clause[: match.start()]
            if _HYPOTHETICAL.search(lead) or _reported(lead) or _negations(lead[-12:]):
                continue
            named = match.groupdict().get("role")
            return _ROLE_FIELD[named] if named else _AREA_FIELD.get(match.group("area"), "health care")
    return None


def detect(text: str) -> list[Statement]:
    """The preferences and facts a user turn states, in the order stated (a later one wins over its opposite)."""
    found: list[Statement] = []
    crisis = crisis_phrase(text) is not None
    for clause in clauses(text):
        for cue in cues():
            for match in cue.pattern.finditer(clause):
                stated = _statement(cue, match, clause)
                if stated is None or (stated == HOTLINES and crisis):
                    continue
                found.append(Statement(stated))
        field = _expertise(clause)
        if field is not None:
            found.append(Statement(EXPERTISE, field))
    return _settled(found)


def _settled(found: list[Statement]) -> list[Statement]:
    """One statement per preference (the last), and of two opposites only the one stated last."""
    last: dict[str, Statement] = {}
    for statement in found:
        last.pop(statement.preference, None)
        for retracted in retracted_by([statement]):
            last.pop(retracted, None)
        last[statement.preference] = statement
    return list(last.values())


def retracted_by(statements: Sequence[Statement]) -> set[str]:
    """The preferences these (settled) statements retract when remembered: the opposites of what they state."""
    stated = {statement.preference for statement in statements}
    return {OPPOSITES[name] for name in stated if name in OPPOSITES} - stated
