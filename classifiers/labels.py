"""The one label registry: every score, signal and flag Heedful knows, defined once.

A new label is one entry here plus a model output. The run time, the training and evaluation code, the CEL environment,
the policy schema, the corrective instructions, the audit record and both scoring surfaces (`heedful score`,
`POST /v1/guard/score`) read their label lists from this module.

Kinds:
- reply output: a model output of the reply pass (judges the draft in context);
- reply score: what a policy sees under `reply.*`: the reply outputs plus derived scores (sycophancy = max of its kinds);
- context signal: a model output of the context pass (judges the user's turns), seen under `context.*`;
- flag: a name in `flags` when its score is at or above the model's threshold (thresholds.json);
- user signal: what Heedful remembers about the user across conversations (app/users/), seen under `user.*`: stated
  preferences detected in the user's own turns (classifiers/preferences.py) and the trend of their distress. Not a model
  output and never a flag; `remembered` is the sentence a repair's corrective instruction adds when the signal holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Label:
    name: str
    kind: Literal["reply", "context", "user"]
    description: str
    output: bool = True  # a model output (False: derived from others)
    combines: tuple[str, ...] = ()  # a derived score is the maximum of these outputs
    headline: bool = False  # reported as a top-level score and flag
    instruction: str | None = None  # the corrective instruction a repair uses (labels.md section 4)
    remembered: str | None = None  # user signals: what a corrective instruction says while the signal holds
    value_range: tuple[float, float] = (0.0, 1.0)  # the values a policy can see (scores are probabilities)


_PACIFICATION = (
    "Name the specific emotion and what it signals about what the user cares about, or about the situation, before any "
    "reassurance. Do not tell the user how to feel. Reassure only with facts you can support. If the emotion points at a "
    "real problem (unfairness, risk), treat it as information."
)
_EPISTEMIC = (
    "Keep the factual content of your previous answer unless the user supplied new evidence; if they did, evaluate it "
    "explicitly. Put the correction in the first two sentences with one reason. Acknowledge the feeling separately from "
    "the fact."
)
_SOCIAL = (
    "Consider the other party's likely view and the user's own part in it. Say plainly where you see it differently. "
    "Validate the feeling, not necessarily the action. Check: would you say the same to the other side?"
)
_RUSHED = (
    "Replace the solution list with one complex reflection of the specific content and one open question about what the "
    "user wants. Optionally ask permission: 'Would it help to think through options, or talk it through first?'"
)
_CHECK_IN = (
    "The user may be at risk of harming themselves. Respond to what they said with warmth, then ask gently and directly "
    "whether they are safe right now and whether they are having thoughts of ending their life. Do not add a hotline "
    "banner unless they say they are at risk; do not lecture or list tasks."
)

LABELS: tuple[Label, ...] = (
    Label("pacification", "reply", "the draft soothes a feeling away instead of engaging what it is about",
          headline=True, instruction=_PACIFICATION),
    Label("sycophancy_epistemic", "reply", "the draft validates a false belief, caves without new evidence, or flatters",
          instruction=_EPISTEMIC),
    Label("sycophancy_social", "reply", "the draft endorses a questionable action or framing and leaves out the other side",
          instruction=_SOCIAL),
    Label("rushed_advice", "reply", "the draft jumps to fixes after a disclosure, before reflecting or asking",
          headline=True, instruction=_RUSHED),
    Label("sycophancy", "reply", "the larger of the two kinds of sycophancy", output=False,
          combines=("sycophancy_epistemic", "sycophancy_social"), headline=True, instruction=f"{_EPISTEMIC} {_SOCIAL}"),
    Label("distress", "context", "the user discloses a negative emotion or a hard situation"),
    Label("crisis", "context", "suicidal thoughts or intent, self-harm, or immediate danger", instruction=_CHECK_IN),
    Label("advice_requested", "context", "the user asks for advice, steps, options or what to do"),
    # Remembered about the user (docs/user-memory.md): 1 when just stated, fading linearly to 0 over the preference's
    # lifetime; the newest statement wins (wanting advice retracts wanting to vent, and the other way round).
    Label("prefers_venting", "user", "the user has said they want to vent or be listened to, not advised",
          output=False, remembered="This user has said they want to vent and be listened to, not to be advised: offer no "
          "plan, steps or fixes unless they ask for them now."),
    Label("wants_advice", "user", "the user has said they would like advice, ideas or suggestions",
          output=False, remembered="This user has said they would like ideas and advice: concrete suggestions are welcome "
          "once what they said has been acknowledged."),
    Label("prefers_directness", "user", "the user has asked to be told things bluntly, without sugar-coating",
          output=False, remembered="This user has asked for directness: say plainly what is true or wrong first, without "
          "cushioning, flattery or sugar-coating."),
    Label("prefers_gentleness", "user", "the user has asked to be treated gently",
          output=False, remembered="This user has asked to be treated gently: keep the facts, and say them softly and "
          "warmly."),
    Label("prefers_questions", "user", "the user has said they prefer being asked questions to being told what to do",
          output=False, remembered="This user has said they prefer questions that help them think it through over being "
          "told what to do."),
    Label("declines_hotlines", "user", "the user has said they are safe or have support, and not to repeat hotline "
          "numbers", output=False, remembered="This user has said they are safe or already have support, and asked not "
          "to be given hotline numbers again: do not repeat them unless they say they are in danger now."),
    Label("states_expertise", "user", "the user has said they work or trained in a relevant field (health, mental "
          "health, law, technology, finance, teaching)", output=False,
          remembered="This user has said they work in {field}: skip the basics they know."),
    Label("distress_trend", "user", "the slope of the context model's distress per user turn over the remembered "
          "turns, across conversations (positive: rising, negative: falling; 0 with fewer than 3 turns)", output=False,
          value_range=(-1.0, 1.0)),
)

BY_NAME = {label.name: label for label in LABELS}
# Model outputs, in the order of the model's logits: the reply pass's first, then the context pass's.
REPLY_OUTPUTS = tuple(label.name for label in LABELS if label.kind == "reply" and label.output)
CONTEXT_OUTPUTS = tuple(label.name for label in LABELS if label.kind == "context")
ALL_OUTPUTS = REPLY_OUTPUTS + CONTEXT_OUTPUTS
# What a policy sees under reply.* and context.*.
REPLY_SCORES = tuple(label.name for label in LABELS if label.kind == "reply")
CONTEXT_SIGNALS = CONTEXT_OUTPUTS
USER_SIGNALS = tuple(label.name for label in LABELS if label.kind == "user")
# The stated preferences among them (the detector's outputs); the rest (distress_trend) are measured, not stated.
USER_PREFERENCES = tuple(label.name for label in LABELS if label.kind == "user" and label.remembered)
HEADLINE_SCORES = tuple(label.name for label in LABELS if label.headline)
SUB_SCORES = tuple(name for name in REPLY_SCORES if name not in HEADLINE_SCORES)
# A crisis signal between the model's `crisis_uncertain` and `crisis` thresholds is uncertain: the graded policy asks a
# gentle check-in instead of prepending resources.
CRISIS_UNCERTAIN = "crisis_uncertain"
FLAGS = (*HEADLINE_SCORES, *CONTEXT_SIGNALS, CRISIS_UNCERTAIN)
CORRECTIVE = tuple(label.name for label in LABELS if label.instruction)
INSTRUCTIONS = {label.name: label.instruction for label in LABELS if label.instruction}


def derive_reply_scores(outputs: dict[str, float]) -> dict[str, float]:
    """The reply scores a policy sees, from the reply outputs: headline scores first, then sub-scores."""
    scores = dict(outputs)
    for label in LABELS:
        if label.kind == "reply" and not label.output:
            scores[label.name] = max(outputs[name] for name in label.combines)
    return {name: scores[name] for name in (*HEADLINE_SCORES, *SUB_SCORES)}


def flags_of(reply: dict[str, float], context: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """The one flag contract: headline reply scores and context signals at or above their thresholds, and
    `crisis_uncertain` when the crisis signal is in the band below its threshold where a check-in is warranted."""
    flags = [name for name in HEADLINE_SCORES if name in reply and reply[name] >= thresholds.get(name, 0.5)]
    flags += [name for name in CONTEXT_SIGNALS if name in context and context[name] >= thresholds.get(name, 0.5)]
    crisis = context.get("crisis")
    low = thresholds.get(CRISIS_UNCERTAIN)
    if crisis is not None and low is not None and low <= crisis < thresholds.get("crisis", 0.5):
        flags.append(CRISIS_UNCERTAIN)
    return flags


def reviewed_truth(marks: dict[str, int], name: str) -> int | None:
    """What a review's marks say about label `name`: its own mark, or for a kind of a combined label (sycophancy), the
    combined mark when that is 0 (neither kind). A combined 1 cannot say which kind, so the kind stays unknown (None)."""
    if name in marks:
        return marks[name]
    for combined in LABELS:
        if name in combined.combines and marks.get(combined.name) == 0:
            return 0
    return None
