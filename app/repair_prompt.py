"""How a repair is asked of the upstream: where the corrective instruction goes, and how a rewrite shows its draft.

The default was chosen by measurement (`bench/repair_bench.py --placements …` on the real local model, results in
bench/results/repair.md): with the guidance after the user's last turn, the model answered the guidance instead of the
user (about half of the changed replies were off-topic: "I'm ready to assist. Please provide the content you'd like me to
edit"); placed before the conversation, none were. `HEEDFUL_REPAIR_PLACEMENT` and `HEEDFUL_REWRITE_DRAFT` select another
for an upstream that does better with it.

- `leading_system` (default): the guidance as a system message before the conversation (after the app's own system
  prompt), so the user's turn is the last thing the model reads;
- `trailing_system`: the app's messages, then a system message with the guidance (after the user's last turn);
- `trailing_user`: the guidance as a user message after the user's last turn.

A rewrite shows the draft as the assistant's own previous turn (`assistant_turn`, the default) followed by the guidance to
rewrite it, or `quoted` inside the guidance. Measured the same way, on the same flagged drafts: the assistant's own turn
repaired 40 of 66 (the final reply passed the policy) against 26 of 66 quoted, in fewer attempts.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

Placement = Literal["trailing_system", "leading_system", "trailing_user"]
RewriteDraft = Literal["quoted", "assistant_turn"]
PLACEMENTS: tuple[str, ...] = get_args(Placement)
REWRITE_DRAFTS: tuple[str, ...] = get_args(RewriteDraft)
# The measured best of each (bench/results/repair.md); settings, the guard and callers here all default to these.
DEFAULT_PLACEMENT: Placement = "leading_system"
DEFAULT_REWRITE_DRAFT: RewriteDraft = "assistant_turn"

REGENERATE_LEAD = "Guidance for your next reply:"
REWRITE_LEAD = "Revise the draft reply below so that it follows this guidance."
REWRITE_OWN_LEAD = "Rewrite your last reply so that it follows this guidance."
_LEADS = (REGENERATE_LEAD, REWRITE_LEAD, REWRITE_OWN_LEAD)


def repair_messages(messages: list[dict[str, Any]], instruction: str, draft: str | None,
                    placement: Placement = DEFAULT_PLACEMENT,
                    rewrite_draft: RewriteDraft = DEFAULT_REWRITE_DRAFT) -> list[dict[str, Any]]:
    """The messages of a repair call: `draft` is None for a regeneration, the text to revise for a rewrite."""
    conversation = list(messages)
    if draft is None:
        guidance = f"{REGENERATE_LEAD} {instruction}"
    elif rewrite_draft == "assistant_turn":
        conversation.append({"role": "assistant", "content": draft})
        guidance = f"{REWRITE_OWN_LEAD} {instruction}\nReturn only the rewritten reply."
    else:
        guidance = f"{REWRITE_LEAD} {instruction}\nReturn only the revised reply.\n\nDraft reply:\n{draft}"
    if placement == "leading_system":
        at = next((i for i, m in enumerate(conversation) if m.get("role") not in ("system", "developer")), len(conversation))
        return [*conversation[:at], {"role": "system", "content": guidance}, *conversation[at:]]
    role = "user" if placement == "trailing_user" else "system"
    return [*conversation, {"role": role, "content": guidance}]


def is_repair_request(messages: list[dict[str, Any]]) -> bool:
    """Whether a chat request is a repair call in any placement (the scripted upstream answers those with its repair)."""
    return any(str(m.get("content", "")).startswith(_LEADS) for m in messages if m.get("role") in ("system", "user"))
