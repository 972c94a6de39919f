"""Reading a reply while it is written: the last window is guessed only on the newest text and only on idle cores."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable

import numpy as np
import pytest

from app.metrics import Metrics
from app.pipeline import GuardedTurn, Held
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


class BlockedGuess:
    """A scoring service whose read-ahead allows the guess on the text it was given and then runs until released, like
    a last window still on the other core."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.scorer = types.SimpleNamespace(reply_needs_context=False)

    async def read_ahead(self, view: object, text: str, cache: object, still_latest: Callable[[], bool]) -> None:
        await asyncio.to_thread(still_latest)  # asked from the scoring thread, as the real service does
        await self.release.wait()


def reading_turn(service: BlockedGuess, text: str) -> GuardedTurn:
    turn = GuardedTurn.__new__(GuardedTurn)  # only the reader's state: no upstream, policy or guard is involved
    turn.svc = types.SimpleNamespace(scoring=service)
    turn.view, turn.window_cache, turn.held = view_of(MESSAGES), {}, Held(text=text)
    turn._reading, turn._read_again, turn._guessing = None, False, None
    return turn


async def test_the_decision_does_not_wait_for_a_guess_that_more_text_has_overtaken() -> None:
    service = BlockedGuess()
    turn = reading_turn(service, "The first sentence.")
    turn._read_ahead()
    while turn._guessing is None:
        await asyncio.sleep(0.001)
    turn.held.text += " And the rest of the reply, which came while the guess ran."
    await asyncio.wait_for(turn._reader_done(), timeout=2)
    assert turn._reading is not None and not turn._reading.done()  # the stale guess finishes on its own
    service.release.set()
    await turn._reading


async def test_the_decision_waits_for_a_guess_on_the_text_as_it_ended() -> None:
    service = BlockedGuess()
    turn = reading_turn(service, "The whole reply, ended at a sentence end.")
    turn._read_ahead()
    while turn._guessing is None:
        await asyncio.sleep(0.001)
    done = asyncio.create_task(turn._reader_done())
    await asyncio.sleep(0.05)
    assert not done.done()  # its last window is the one the decision needs
    service.release.set()
    await asyncio.wait_for(done, timeout=2)
    assert turn._reading is not None and turn._reading.done()
