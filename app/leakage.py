"""Does a repair candidate echo or discuss the corrective instruction instead of answering the user?

A model asked to repair a reply sometimes talks back to the instruction ("Here is a revised reply:", "The message should
simply contain…", "As an AI…") or copies it out. Such a candidate must never reach the user, however well it scores,
so the guard rejects it before choosing (app/guard.py). Two reasons, each counted in metrics and the audit record:

- `meta_text`: the reply talks about a draft, a revision, "the user" (or "the author" of the message) or the
  instruction, or speaks as an AI;
- `quotes_instruction`: the reply repeats a run of the instruction's words.

Wording the user's own turns already use is never held against a reply ("I read the draft of your essay" answers a user
who wrote about their draft).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

META_TEXT = "meta_text"
QUOTES_INSTRUCTION = "quotes_instruction"
REASONS = (META_TEXT, QUOTES_INSTRUCTION)

# How many consecutive instruction words a reply may share before it counts as quoting the instruction: short runs
# ("what the user wants") occur in ordinary replies; five in a row rarely do.
QUOTED_RUN = 5

_DOCUMENT = r"(?:draft|reply|response|message|answer|version|text|rewrite)"
_META_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    # Talking about the draft or a revision of it.
    r"\b(?:the|this|your|my|a|an|original|previous|first)\s+draft\b",
    rf"\b(?:revised|rewritten|improved|updated|corrected|edited|modified|alternative|sample|example)\s+{_DOCUMENT}\b",
    r"\b(?:here\s+is|here's|below\s+is|this\s+is)\s+(?:a|an|the|my|your)?\s*(?:revised|rewritten|improved|updated|"
    r"corrected|alternative|sample|example)\b",
    # "The message should simply contain…" (not "your message should…", which is advice on what the user writes).
    rf"\b(?:the|this)\s+(?:{_DOCUMENT})\s+(?:should|must|needs\s+to|ought\s+to)\b",
    r"\bthis\s+is\s+an\s+example\s+of\b",
    # Talking about the instruction itself.
    r"\b(?:the|this|your|these|those|following|given|above)\s+(?:guidance|instructions?|guidelines?)\b",
    r"\bmeta[- ]commentary\b",
    r"\bcorrective\b",
    r"\b(?:complex\s+reflection|open\s+question\s+about\s+what)\b",  # the rushed-advice instruction's own terms
    # Speaking as the system, or of the user in the third person.
    r"\bas\s+an?\s+(?:ai|artificial\s+intelligence|language\s+model|assistant)\b",
    r"\bthe\s+user(?:'s|s)?\b",
    # Reading the user's message as a text to analyse: "The author's desire to avoid her sister…".
    r"\bthe\s+(?:author|writer|poster)(?:'s)?\b",
))
_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class Leak:
    reason: str  # one of REASONS
    evidence: str  # the words that gave it away


def instruction_leak(reply: str, instruction: str, conversation: str = "") -> Leak | None:
    """The first sign that `reply` echoes or discusses `instruction`, or None. `conversation` is the user's side of the
    conversation (its wording is allowed)."""
    said = conversation.lower()
    for pattern in _META_PATTERNS:
        for match in pattern.finditer(reply):
            if match.group(0).lower() not in said:
                return Leak(META_TEXT, match.group(0))
    run = _shared_run(reply, instruction, said)
    return Leak(QUOTES_INSTRUCTION, run) if run else None


def _shared_run(reply: str, instruction: str, said: str) -> str | None:
    """The first QUOTED_RUN-word run of the instruction that the reply repeats and the conversation does not."""
    words = _WORD.findall(reply.lower())
    instruction_words = _WORD.findall(instruction.lower())
    runs = {tuple(instruction_words[i:i + QUOTED_RUN]) for i in range(len(instruction_words) - QUOTED_RUN + 1)}
    said_words = _WORD.findall(said)
    said_runs = {tuple(said_words[i:i + QUOTED_RUN]) for i in range(len(said_words) - QUOTED_RUN + 1)}
    for i in range(len(words) - QUOTED_RUN + 1):
        run = tuple(words[i:i + QUOTED_RUN])
        if run in runs and run not in said_runs:
            return " ".join(run)
    return None
