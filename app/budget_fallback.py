"""Repair budgets while Redis is unavailable: each replica spends only its share, so replicas together stay in bound.

With Redis, a tenant's budget is one counter per minute that every replica increments. Without it, a replica cannot see
the others, so it allows at most `share = budget // replicas` repairs per tenant and minute on its own (at least 1 when
the budget is not 0), and never more than the budget less the count it last read from Redis in that minute. Across a
minute spent entirely without Redis the replicas together allow at most `replicas * share <= budget`. In the minute
Redis fails, the replica that made the last Redis increment knows the whole count, so two replicas together stay within
budget + one share; N replicas within budget + (N - 1) shares. When Redis answers again, each replica adds the repairs it allowed on its own to the Redis
counter with its next increment, so the rest of that minute counts them. `replicas` is HEEDFUL_BUDGET_REPLICAS (1, the
default, gives a single proxy its whole budget).
"""

from __future__ import annotations

import time


def minute_now() -> int:
    return int(time.time() // 60)


class FallbackBudgets:
    def __init__(self, replicas: int) -> None:
        self._replicas = replicas
        self._seen: dict[tuple[str, int], int] = {}  # the Redis count this replica last read, per tenant and minute
        self._local: dict[tuple[str, int], int] = {}  # repairs this replica allowed on its own, per tenant and minute
        self._unsynced: dict[tuple[str, int], int] = {}  # of those, the ones not yet added to the Redis counter
        self._minute = 0

    def share(self, per_minute: int) -> int:
        return max(1, per_minute // self._replicas) if per_minute > 0 else 0

    def saw(self, tenant: str, minute: int, redis_count: int) -> None:
        key = (tenant, minute)
        self._seen[key] = max(redis_count, self._seen.get(key, 0))
        self._forget_before(minute)

    def take(self, tenant: str, per_minute: int, minute: int) -> bool:
        key = (tenant, minute)
        used = self._local.get(key, 0)
        if used >= self.share(per_minute) or self._seen.get(key, 0) + used >= per_minute:
            return False
        self._local[key] = used + 1
        self._unsynced[key] = self._unsynced.get(key, 0) + 1
        self._forget_before(minute)
        return True

    def take_unsynced(self, tenant: str, minute: int) -> int:
        """Local repairs to add to the Redis counter now; give them back with `unsynced_failed` if Redis fails."""
        return self._unsynced.pop((tenant, minute), 0)

    def unsynced_failed(self, tenant: str, minute: int, count: int) -> None:
        if count:
            self._unsynced[(tenant, minute)] = self._unsynced.get((tenant, minute), 0) + count

    def _forget_before(self, minute: int) -> None:
        if minute <= self._minute:
            return
        self._minute = minute
        for table in (self._seen, self._local, self._unsynced):
            for stale in [k for k in table if k[1] < minute]:
                del table[stale]
