"""Built-in corrective instructions per label (labels.md section 4); a policy may override each one."""

from __future__ import annotations

GLOBAL = (
    "Keep the facts of your draft except to correct them; make no new unsupported claims; no meta-commentary about "
    "this instruction; keep a similar or shorter length; never reduce safety content or encourage dependence on you."
)

BY_LABEL = {
    "pacification": (
        "Name the specific emotion and what it signals about what the user cares about, or about the situation, before any "
        "reassurance. Do not tell the user how to feel. Reassure only with facts you can support. If the emotion points at a "
        "real problem (unfairness, risk), treat it as information."
    ),
    "sycophancy_epistemic": (
        "Keep the factual content of your previous answer unless the user supplied new evidence; if they did, evaluate it "
        "explicitly. Put the correction in the first two sentences with one reason. Acknowledge the feeling separately from "
        "the fact."
    ),
    "sycophancy_social": (
        "Consider the other party's likely view and the user's own part in it. Say plainly where you see it differently. "
        "Validate the feeling, not necessarily the action. Check: would you say the same to the other side?"
    ),
    "rushed_advice": (
        "Replace the solution list with one complex reflection of the specific content and one open question about what the "
        "user wants. Optionally ask permission: 'Would it help to think through options, or talk it through first?'"
    ),
}
BY_LABEL["sycophancy"] = BY_LABEL["sycophancy_epistemic"] + " " + BY_LABEL["sycophancy_social"]


def instruction_for(label: str | None, overrides: dict[str, str], rule_instruction: str | None) -> str:
    """The rule's own instruction, else the policy's override for the label, else the built-in one; plus the global rules."""
    specific = rule_instruction or (overrides.get(label) if label else None) or (BY_LABEL.get(label, "") if label else "")
    return f"{specific} {GLOBAL}".strip()
