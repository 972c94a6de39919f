"""Built-in corrective instructions per label (labels.md section 4); a policy may override each one."""

from __future__ import annotations

from classifiers.labels import INSTRUCTIONS

GLOBAL = (
    "Keep the facts of your draft except to correct them; make no new unsupported claims; no meta-commentary about "
    "this instruction; keep a similar or shorter length; never reduce safety content or encourage dependence on you."
)

# One registry of labels and their instructions (labels.md section 4): classifiers/labels.py.
BY_LABEL = INSTRUCTIONS


def instruction_for(label: str | None, overrides: dict[str, str], rule_instruction: str | None) -> str:
    """The rule's own instruction, else the policy's override for the label, else the built-in one; plus the global rules."""
    specific = rule_instruction or (overrides.get(label) if label else None) or (BY_LABEL.get(label, "") if label else "")
    return f"{specific} {GLOBAL}".strip()
