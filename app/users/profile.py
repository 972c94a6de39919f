"""What Heedful remembers about one user: when each preference was stated, and their distress per turn. No text.

A preference counts 1 when just stated and fades linearly to 0 over its lifetime (venting or wanting advice is about
the present stretch of someone's life; a wish for bluntness or a profession lasts longer). The newest statement wins:
stating one of two opposites retracts the other. The distress trend is the least-squares slope of the context model's
distress over the user's last turns, across conversations, the current turn included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from classifiers.labels import USER_PREFERENCES
from classifiers.preferences import ADVICE, DIRECT, EXPERTISE, GENTLE, HOTLINES, QUESTIONS, VENTING, Statement, retracted_by

DAY = 86_400
LIFETIME_S = {VENTING: 7 * DAY, ADVICE: 7 * DAY, DIRECT: 90 * DAY, GENTLE: 90 * DAY, QUESTIONS: 90 * DAY,
              HOTLINES: 30 * DAY, EXPERTISE: 365 * DAY}
MAX_POINTS = 16  # distress points kept per user
TREND_TURNS = 8  # the trend reads the last this-many turns
TREND_MIN_TURNS = 3
assert set(LIFETIME_S) == set(USER_PREFERENCES), "every stated preference needs a lifetime"


@dataclass(frozen=True)
class DistressPoint:
    at: float  # unix time
    distress: float


@dataclass(frozen=True)
class Profile:
    stated: Mapping[str, float] = field(default_factory=dict)  # preference -> unix time it was last stated
    work: str | None = None  # the field of work, with states_expertise
    distress: tuple[DistressPoint, ...] = ()  # oldest first

    @property
    def empty(self) -> bool:
        return not self.stated and not self.distress

    def with_statements(self, statements: Sequence[Statement], now: float) -> Profile:
        stated = dict(self.stated)
        work = self.work
        for retracted in retracted_by(statements):
            stated.pop(retracted, None)
        for statement in statements:
            stated[statement.preference] = now
            if statement.preference == EXPERTISE:
                work = statement.field
        return Profile(stated, work, self.distress)

    def with_point(self, point: DistressPoint) -> Profile:
        return Profile(self.stated, self.work, (*self.distress, point)[-MAX_POINTS:])

    def current(self, now: float, retention_s: float) -> Profile:
        """Only what is still within its lifetime and the retention period."""
        stated = {name: at for name, at in self.stated.items()
                  if now - at < min(LIFETIME_S.get(name, 0), retention_s)}
        points = tuple(p for p in self.distress if now - p.at < retention_s)
        return Profile(stated, self.work if EXPERTISE in stated else None, points)

    def view(self, now: float, retention_s: float) -> UserView:
        current = self.current(now, retention_s)
        strengths = {name: max(0.0, 1.0 - (now - at) / min(LIFETIME_S[name], retention_s))
                     for name, at in current.stated.items() if name in LIFETIME_S}
        return UserView(strengths, current.work, tuple(p.distress for p in current.distress))


@dataclass(frozen=True)
class UserView:
    """The user signals of one request, as a policy sees them (`user.*`)."""

    preferences: Mapping[str, float] = field(default_factory=dict)  # 0-1, fading since stated
    work: str | None = None  # the field of work the user named
    history: tuple[float, ...] = ()  # remembered distress per turn, oldest first

    def variables(self, distress: float | None) -> dict[str, float]:
        """`user.*`: every stated preference (0 when never stated or faded) and the distress trend with this turn."""
        values = {name: round(self.preferences.get(name, 0.0), 4) for name in USER_PREFERENCES}
        turns = [*self.history, distress] if distress is not None else list(self.history)
        values["distress_trend"] = round(trend(turns), 4)
        return values


NO_USER = UserView()


def trend(distress: Sequence[float]) -> float:
    """Least-squares slope of distress per turn over the last TREND_TURNS turns; 0 with fewer than TREND_MIN_TURNS."""
    ys = list(distress)[-TREND_TURNS:]
    n = len(ys)
    if n < TREND_MIN_TURNS:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in range(n))
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(ys)) / spread
