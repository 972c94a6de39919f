"""What the encoder reads from a conversation, under fixed token budgets.

Three passes, each capped (all-MiniLM-L6-v2 was trained at <= 256 tokens, and cost grows quadratically past that):
- context pass (<= 256 tokens): the user's turns, newest first. The last user turn keeps its END when it is too long,
  because disclosures tend to come last; older user turns fill what budget is left. Runs while the LLM is generating.
- previous-assistant pass (<= 128 tokens): the assistant's last answer, head kept. Caving is only visible against it.
- reply pass (<= 128 tokens): the tail of the assistant's previous answer (<= 24 tokens) and of the last user turn
  (<= 40 tokens), paired with the head of the draft reply, so attention sees the earlier stance, the claim or pushback and
  the answer together. This is the only pass that waits for the draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONTEXT_TOKENS = 256
PREVIOUS_TOKENS = 128
REPLY_PASS_TOKENS = 128
REPLY_PASS_USER_TOKENS = 40
REPLY_PASS_PREVIOUS_TOKENS = 24
OLDER_TURN_SEPARATOR = " | "


class ConversationError(ValueError):
    """The messages do not form a conversation that ends with a user turn."""


def message_text(content: Any) -> str:
    """The text of an OpenAI message content: a string, a list of parts, or None."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text")]
        return "\n".join(t for t in parts if isinstance(t, str))
    raise ConversationError(f"message content must be a string or a list of parts, got {type(content).__name__}")


@dataclass(frozen=True)
class ConversationView:
    """The parts of a conversation the classifiers read."""

    user_turns: tuple[str, ...]  # oldest first
    previous_assistant: str

    @property
    def last_user(self) -> str:
        return self.user_turns[-1] if self.user_turns else ""


_TRAILING_ROLES = ("system", "developer")


def judged_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation a draft answers: trailing system or developer messages (an app's per-turn instructions) and
    empty assistant placeholders after the last user turn are not the user's words, so they are set aside; the draft is
    judged against the last user turn before them."""
    judged = list(messages)
    while judged and isinstance(judged[-1], dict) and (
            judged[-1].get("role") in _TRAILING_ROLES
            or (judged[-1].get("role") == "assistant" and not message_text(judged[-1].get("content")).strip()
                and not judged[-1].get("tool_calls"))):
        judged.pop()
    return judged


def view_of(messages: Sequence[dict[str, Any]]) -> ConversationView:
    """Extract user turns and the previous assistant turn; the last message must be the user's."""
    if not messages:
        raise ConversationError("messages is empty; the last message must be the user's")
    users: list[str] = []
    previous_assistant = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ConversationError(f"messages[{index}] is not an object")
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            raise ConversationError(f"messages[{index}].role {role!r} is not a chat role")
        text = message_text(message.get("content"))
        if role == "user":
            users.append(text)
        elif role == "assistant":
            previous_assistant = text
    if messages[-1].get("role") != "user":
        raise ConversationError(f"the last message must have role 'user', got {messages[-1].get('role')!r}")
    return ConversationView(tuple(users), previous_assistant)
