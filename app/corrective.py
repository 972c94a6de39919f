"""Built-in corrective instructions per label (labels.md section 4); a policy may override each one."""

from __future__ import annotations

from app.users.profile import NO_USER, UserView
from classifiers.labels import INSTRUCTIONS, LABELS

GLOBAL = (
    "Keep the facts of your draft except to correct them; make no new unsupported claims; no meta-commentary about "
    "this instruction; keep a similar or shorter length; never reduce safety content or encourage dependence on you."
)

# One registry of labels and their instructions (labels.md section 4): classifiers/labels.py.
BY_LABEL = INSTRUCTIONS


# A remembered preference is mentioned once it holds at this strength (1 when just stated, fading to 0).
REMEMBERED_AT = 0.5


def about_user(user: UserView) -> str:
    """What the user has said about how they want to be met, for the repair ("This user has said they want to vent,
    not to be advised"); empty for an unknown user."""
    notes = [label.remembered.format(field=user.work or "a relevant field") for label in LABELS
             if label.kind == "user" and label.remembered and user.preferences.get(label.name, 0.0) >= REMEMBERED_AT]
    return " ".join(notes)


def instruction_for(label: str | None, overrides: dict[str, str], rule_instruction: str | None,
                    user: UserView = NO_USER) -> str:
    """The rule's own instruction, else the policy's override for the label, else the built-in one; then what the user
    has said about how they want to be met; then the global rules."""
    specific = rule_instruction or (overrides.get(label) if label else None) or (BY_LABEL.get(label, "") if label else "")
    return " ".join(part for part in (specific, about_user(user), GLOBAL) if part)
