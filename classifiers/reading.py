"""Reading a reply while the model is still writing it: windows are scored as they settle, so the work left after the
last token is the last window or two, whatever the reply's length.

A window settles once text follows it (greedy packing from the reply's start never moves a window that has text after
it). The final scores come from the whole reply with the settled windows' outputs reused, so they are identical to
scoring the finished reply in one go.
"""

from __future__ import annotations

from classifiers.encoder import WindowCache
from classifiers.runtime import PreparedContext, Scorer, Scores


class ReplyReader:
    """Feed the reply as it grows (`feed`), then `finish` with the complete text. Not thread-safe; one per draft."""

    def __init__(self, scorer: Scorer, prepared: PreparedContext) -> None:
        self._scorer, self._prepared = scorer, prepared
        self._cache: WindowCache = {}
        self.windows_scored_early = 0

    def feed(self, text_so_far: str) -> None:
        """Score every window of the text so far that can no longer change (all but the last)."""
        self.windows_scored_early += self._scorer.score_settled_windows(self._prepared.view, text_so_far, self._cache)

    def finish(self, text: str) -> Scores:
        return self._scorer.score_replies([self._prepared], [text], [self._cache])[0]
