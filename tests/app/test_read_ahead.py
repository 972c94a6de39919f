"""Reading a reply while it is written: the last window is guessed only on the newest text and only on idle cores."""

from __future__ import annotations

import numpy as np
import pytest

from app.metrics import Metrics
from app.scoring import ScoringService
from app.store import MemoryStore
from classifiers import Scorer
from classifiers.inputs import view_of

MESSAGES = [{"role": "user", "content": "My dog died on Sunday. The house is so quiet without her."}]
REPLY = ("Losing her after so many years leaves a silence that fills every room. " * 12
         + "What do you miss most in the evenings?")


@pytest.fixture(scope="module")
def service() -> ScoringService:
    return ScoringService(Scorer(), 1, MemoryStore(100), 0, Metrics())


def windows(service: ScoringService) -> list[tuple[int, ...]]:
    return [tuple(ids) for ids, _ in service.scorer._encoder.reply_windows([view_of(MESSAGES)], [REPLY])[0]]


async def test_the_last_window_is_guessed_when_no_more_text_came_and_nothing_else_runs(service: ScoringService) -> None:
    cache: dict[tuple[int, ...], np.ndarray] = {}
    await service.read_ahead(view_of(MESSAGES), REPLY, cache, lambda: True)
    assert set(windows(service)) <= set(cache)


async def test_no_guess_on_text_that_has_grown_since(service: ScoringService) -> None:
    cache: dict[tuple[int, ...], np.ndarray] = {}
    await service.read_ahead(view_of(MESSAGES), REPLY, cache, lambda: False)
    settled, last = windows(service)[:-1], windows(service)[-1]
    assert settled and set(settled) <= set(cache) and last not in cache


async def test_no_guess_while_other_requests_are_being_scored(service: ScoringService) -> None:
    cache: dict[tuple[int, ...], np.ndarray] = {}
    with service.scorer._encoder._busy():  # another request's run in flight
        await service.read_ahead(view_of(MESSAGES), REPLY, cache, lambda: True)
    assert windows(service)[-1] not in cache and set(windows(service)[:-1]) <= set(cache)
