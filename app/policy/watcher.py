"""Holds the active policy set and swaps in a changed one atomically; a broken edit is refused and the last good set stays.

Changes are detected by hashing the resolved contents of the directory's policy files on a short poll, which also sees
Kubernetes ConfigMap updates (they swap a `..data` symlink, so file mtimes in the mount point never change).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from app.metrics import Metrics
from app.policy.errors import PolicyError
from app.policy.loader import policy_files
from app.policy.policy_set import PolicySet, load_policy_set

log = logging.getLogger("heedful.policy")


def _fingerprint(directory: Path) -> str:
    digest = hashlib.sha256()
    try:
        for path in policy_files(directory):
            digest.update(path.name.encode() + b"\x00" + path.read_bytes() + b"\x00")
    except OSError as exc:  # a swap in progress: try again on the next poll
        return f"unreadable:{exc}"
    return digest.hexdigest()


class PolicyStore:
    def __init__(self, directory: Path, metrics: Metrics) -> None:
        self.directory = directory
        self._metrics = metrics
        self._fingerprint = _fingerprint(directory)
        self.active: PolicySet = load_policy_set(directory)  # a broken set at start-up stops the server
        self.last_error: str | None = None
        self._publish()

    def _publish(self) -> None:
        for policy in self.active.policies:
            self._metrics.latency_budget.labels(policy.name).set(policy.document.spec.limits.added_latency_budget_ms / 1000)

    def reload_if_changed(self) -> bool:
        fingerprint = _fingerprint(self.directory)
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        try:
            candidate = load_policy_set(self.directory)
        except PolicyError as exc:
            self.last_error = str(exc)
            self._metrics.policy_reloads.labels("failure").inc()
            log.error("policy reload refused; keeping the last good policies", extra={"problems": [str(p) for p in exc.problems]})
            return False
        self.active, self.last_error = candidate, None
        self._metrics.policy_reloads.labels("success").inc()
        self._publish()
        log.info("policies reloaded", extra={"policies": [f"{p.name}@{p.version}" for p in candidate.policies]})
        return True

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await asyncio.to_thread(self.reload_if_changed)
