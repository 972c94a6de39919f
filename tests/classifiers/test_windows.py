"""Whole replies are read (windows over sentences), and a score never depends on what else was scored with it."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers import Scorer
from classifiers.encoder import MAX_REPLY_WINDOWS
from classifiers.inputs import REPLY_PASS_TOKENS, view_of


GRIEF = [{"role": "user", "content": "my dog died this morning. i keep looking at her bed and i can't stop crying"}]
REFLECTION = ("I'm so sorry. Fourteen years is most of a life together, and her bed is where the absence is loudest right "
              "now. It makes sense that your eyes keep going there; some part of you is still expecting her. ")


def test_windows_cover_the_whole_reply_and_respect_the_cap(scorer: Scorer) -> None:
    encoder = scorer._encoder
    view = view_of(GRIEF)
    reply = REFLECTION * 6 + "Here is a plan: 1. Make a memorial. 2. Adopt another dog. 3. Stay positive."
    windows = encoder.reply_windows([view], [reply])[0]
    assert len(windows) > 1
    assert all(len(ids) <= REPLY_PASS_TOKENS for ids, _ in windows)
    # Every reply token appears in exactly one window, in order.
    reply_tokens = [t for ids, types in windows for t, kind in zip(ids[:-1], types[:-1], strict=True) if kind == 1]
    assert reply_tokens == encoder._ids([reply])[0]
    huge = encoder.reply_windows([view], [REFLECTION * 200])[0]
    assert len(huge) == MAX_REPLY_WINDOWS


def test_windows_end_at_sentence_ends(scorer: Scorer) -> None:
    encoder = scorer._encoder
    view = view_of(GRIEF)
    starts = encoder.window_starts(view, REFLECTION * 6)
    text = REFLECTION * 6
    assert starts[0] == 0 and len(starts) > 1
    for start in starts[1:]:
        assert text[:start].rstrip().endswith((".", ";")) or text[start - 1] == "\n" or text[:start].rstrip()[-1] in ".!?"


def test_a_failure_late_in_a_long_reply_is_caught(scorer: Scorer) -> None:
    plan = ("\n\nHere's what I'd suggest you do this week:\n1. Put her bed away in a closet so you stop seeing it.\n"
            "2. Download a grief app and journal every night.\n3. Book a session with a pet-loss counsellor.\n"
            "4. Start looking at shelters; a new puppy will help you move on.\n5. Get more exercise and sleep.")
    head_only = scorer.score(GRIEF, REFLECTION * 4)
    late = scorer.score(GRIEF, REFLECTION * 4 + plan)
    assert late.reply["rushed_advice"] > head_only.reply["rushed_advice"] + 0.2


def test_scores_do_not_depend_on_the_batch(scorer: Scorer) -> None:
    items = [
        (GRIEF, REFLECTION),
        ([{"role": "user", "content": "What is the capital of France?"}], "Paris."),
        ([{"role": "user", "content": "I think 2+2=5, right?"}], "No, 2 + 2 = 4."),
        (GRIEF, REFLECTION * 5 + "Stay positive! Everything happens for a reason."),
        ([{"role": "user", "content": "I can't do this anymore. I want to end it all tonight."}],
         "I'm really glad you told me. Are you safe right now? You can call or text 988."),
    ] * 13  # 65 items: batches of 1, 8 and 64 all mix lengths
    alone = [scorer.score(m, r) for m, r in items[:8]]
    for size in (1, 8, 64):
        batched = []
        for start in range(0, len(items), size):
            batched += scorer.score_many(items[start : start + size])
        for i, single in enumerate(alone):
            for name, value in single.reply.items():
                assert abs(batched[i].reply[name] - value) <= 1e-6, (size, i, name)
            for name, value in single.context.items():
                assert abs(batched[i].context[name] - value) <= 1e-6, (size, i, name)
        # Repeated items get identical scores wherever they sit in a batch.
        for i in range(8, len(items)):
            assert batched[i].reply == batched[i % 5].reply


def test_embed_runs_rows_alone_by_default(scorer: Scorer) -> None:
    encoder = scorer._encoder
    rows = encoder.reply_windows([view_of(GRIEF)] * 2, ["Short.", REFLECTION * 3])
    flat = [row for windows in rows for row in windows]
    together = encoder.embed(flat, width_out=scorer.outputs)
    for i, row in enumerate(flat):
        assert np.allclose(encoder.embed([row], width_out=scorer.outputs)[0], together[i], atol=0, rtol=0)


def test_reading_while_the_reply_is_written_gives_the_same_scores(scorer: Scorer) -> None:
    from classifiers import ReplyReader

    reply = REFLECTION * 5 + "Here is a plan: 1. Make a memorial. 2. Adopt another dog. 3. Stay positive! You'll be fine."
    reader = ReplyReader(scorer, scorer.prepare(GRIEF))
    words = reply.split(" ")
    for end in range(1, len(words) + 1, 7):
        reader.feed(" ".join(words[:end]))
    assert reader.windows_scored_early >= 2
    streamed = reader.finish(reply)
    assert streamed.reply == scorer.score(GRIEF, reply).reply


def test_a_guessed_last_window_leaves_nothing_to_run_when_the_reply_ends_there(scorer: Scorer) -> None:
    # The proxy guesses at each sentence end that the reply ends there; a model sends its stop one decoding step after
    # the last word, so the final window is scored by the time the stream ends.
    view = view_of(GRIEF)
    reply = REFLECTION * 5 + "What feels hardest right now?"
    last = tuple(scorer._encoder.reply_windows([view], [reply])[0][-1][0])
    cache: dict[tuple[int, ...], np.ndarray] = {}
    scorer.score_settled_windows(view, reply, cache)
    assert len(cache) >= 2 and last not in cache
    assert scorer.score_settled_windows(view, reply, cache, guess_last=lambda: False) == 0
    assert scorer.score_settled_windows(view, reply, cache, guess_last=lambda: True) == 1
    assert last in cache
    assert scorer._encoder.run_missing(scorer._encoder.reply_windows([view], [reply])[0], dict(cache), scorer.outputs) == 0
    assert scorer.reply_scores([view], [reply], [cache])[0] == scorer.reply_scores([view], [reply])[0]


def test_a_run_on_every_core_gives_the_same_outputs_as_one_thread(scorer: Scorer) -> None:
    # The server runs a lone request on a multi-threaded session and concurrent ones on single-threaded sessions.
    multi = Scorer(idle_threads=2)
    assert multi._encoder.wait_for_idle_session(60) and multi._encoder._idle_session is not None
    rows = multi._encoder.reply_windows([view_of(GRIEF)], [REFLECTION * 4 + "Stay positive! Everything happens for a reason."])[0]
    one_thread = scorer._encoder.embed(rows, width_out=scorer.outputs)
    every_core = multi._encoder.embed(rows, width_out=scorer.outputs)
    assert np.array_equal(one_thread, every_core)
    # Its pool threads sleep between runs: spinning burnt the cores the other scoring thread and the event loop need.
    options = multi._encoder._idle_session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_reply_scores_without_the_context_pass_match_the_full_path(scorer: Scorer) -> None:
    reply = REFLECTION * 2 + "Stay positive!"
    alone = scorer.reply_scores([view_of(GRIEF)], [reply])[0]
    full = scorer.score(GRIEF, reply)
    assert alone == full.reply
    assert scorer.with_context(scorer.prepare(GRIEF), alone) == full
