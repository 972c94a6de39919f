"""OpenAI chat wire models. Unknown fields are kept (extra="allow") so they pass through to the upstream untouched.

They are also the request-body schemas /openapi.json publishes: the documented fields are typed (a wrong type is a 400
naming the field, never an upstream error), everything else rides along as extras.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

# A number as the OpenAI API takes it: an int or a finite float ("0.7" is not one; NaN and 1e400 never get this far).
Number = StrictInt | StrictFloat


class OpenAIBaseModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(OpenAIBaseModel):
    include_usage: StrictBool | None = None


class ChatCompletionRequest(OpenAIBaseModel):
    # Ordered by the official OpenAI API documentation; everything else rides along in the extras. The pipeline reads
    # tools, logprobs and the like from the extras (app/pipeline.py plain_text), so they stay untyped here.
    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    # Strict like the OpenAI API: "2" is not an n, 1 is not a stream flag (and the published schema says so).
    n: StrictInt | None = Field(default=None, ge=1, le=128)  # OpenAI's own bound
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    presence_penalty: Number | None = None
    frequency_penalty: Number | None = None
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    user: StrictStr | None = None  # the app's id for its user: passed upstream, and keys user memory (app/users/)

    def upstream_body(self, **changes: Any) -> dict[str, Any]:
        body = self.model_dump(exclude_unset=True, exclude_none=False)
        body.update(changes)
        return body

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_unset=True) for m in self.messages]


class GuardScoreRequest(BaseModel):
    # Heedful's own endpoint: nothing is forwarded, so an unknown key is a typo worth a 400 (a misspelt `policy` would
    # otherwise be scored silently under the default policy).
    model_config = ConfigDict(extra="forbid")
    messages: list[ChatMessage] = Field(min_length=1)
    reply: str
    model: str = "unknown"
    policy: str | None = None
    user: str | None = Field(default=None, description="The app's id for its user, as in chat completions: the "
                             "remembered signals are read (never written) and returned under `user`.")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error the proxy returns, with an `x-heedful-request-id` header."""

    error: ErrorDetail


def choice_text(choice: dict[str, Any]) -> str | None:
    """The draft text of a non-streaming choice, or None when it is not plain text (tool calls, refusals, empty)."""
    message = choice.get("message") or {}
    if message.get("tool_calls") or message.get("function_call"):
        return None
    content = message.get("content")
    return content if isinstance(content, str) else None
