"""OpenAI chat wire models. Unknown fields are kept (extra="allow") so they pass through to the upstream untouched."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenAIBaseModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(OpenAIBaseModel):
    # Ordered by the official OpenAI API documentation; everything else rides along in the extras.
    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    n: int | None = Field(default=None, ge=1, le=128)  # OpenAI's own bound
    stream: bool | None = False
    user: str | None = None  # the app's id for its user: passed upstream, and keys user memory (app/users/)

    def upstream_body(self, **changes: Any) -> dict[str, Any]:
        body = self.model_dump(exclude_unset=True, exclude_none=False)
        body.update(changes)
        return body

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_unset=True) for m in self.messages]


class GuardScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[ChatMessage] = Field(min_length=1)
    reply: str
    model: str = "unknown"
    policy: str | None = None
    user: str | None = Field(default=None, description="The app's id for its user, as in chat completions: the "
                             "remembered signals are read (never written) and returned under `user`.")


def choice_text(choice: dict[str, Any]) -> str | None:
    """The draft text of a non-streaming choice, or None when it is not plain text (tool calls, refusals, empty)."""
    message = choice.get("message") or {}
    if message.get("tool_calls") or message.get("function_call"):
        return None
    content = message.get("content")
    return content if isinstance(content, str) else None
