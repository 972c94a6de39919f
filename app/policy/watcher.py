"""Holds the active policy set and swaps in a changed one atomically; a broken edit is refused and the last good set stays.

Changes are detected by hashing the resolved contents of the directory's policy files on a short poll, which also sees
Kubernetes ConfigMap updates (they swap a `..data` symlink, so file mtimes in the mount point never change).

Whatever goes wrong in a reload (a file the loader refuses, or a fault nobody foresaw) is logged, counted in
heedful_policy_reloads_total{outcome="failure"} and shown as /readyz `last_policy_error`; the watcher itself never stops,
so the next good edit still goes live.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from app.metrics import Metrics
from app.policy.errors import PolicyError
from app.policy.loader import policy_files
from app.policy.policy_set import PolicySet, load_policy_set
from app.policy.source import MAX_POLICY_BYTES

log = logging.getLogger("heedful.policy")


def _fingerprint(directory: Path) -> str:
    digest = hashlib.sha256()
    try:
        for path in policy_files(directory):
            status = path.stat()
            # What the loader refuses unread (an oversized file, a directory, a pipe that would block) is not read here
            # either, on every poll: its size, type and time stand for it.
            readable = stat.S_ISREG(status.st_mode) and status.st_size <= MAX_POLICY_BYTES
            content = path.read_bytes() if readable else f"{status.st_mode}:{status.st_size}:{status.st_mtime_ns}".encode()
            digest.update(path.name.encode() + b"\x00" + content + b"\x00")
    except OSError as exc:  # a swap in progress: try again on the next poll
        return f"unreadable:{exc}"
    return digest.hexdigest()


@dataclass(frozen=True)
class PolicySnapshot:
    """A policy set and the fingerprint of the files it was read from (taken first: an edit made while the set was
    read shows as a change on the next poll)."""

    fingerprint: str
    policies: PolicySet


def read_policies(directory: Path) -> PolicySnapshot:
    """Raises PolicyError where the set is broken."""
    fingerprint = _fingerprint(directory)
    return PolicySnapshot(fingerprint, load_policy_set(directory))


class PolicyStore:
    def __init__(self, directory: Path, metrics: Metrics, snapshot: PolicySnapshot | None = None) -> None:
        """`snapshot`: the set `heedful serve` already read and checked before binding the port (read once, not twice)."""
        self.directory = directory
        self._metrics = metrics
        snapshot = snapshot or read_policies(directory)  # a broken set at start-up stops the server
        self._fingerprint: str | None = snapshot.fingerprint
        self.active: PolicySet = snapshot.policies
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
            self._refuse(str(exc), [str(p) for p in exc.problems])
            if _fingerprint(self.directory) != fingerprint:
                # Changed while it was read (a file deleted or swapped mid-reload): look again on the next poll instead
                # of taking this failure as the verdict on what is there now.
                self._fingerprint = None
            return False
        self.active, self.last_error = candidate, None
        self._metrics.policy_reloads.labels("success").inc()
        self._publish()
        log.info("policies reloaded", extra={"policies": [f"{p.name}@{p.version}" for p in candidate.policies]})
        return True

    def _refuse(self, error: str, problems: list[str]) -> None:
        self.last_error = error
        self._metrics.policy_reloads.labels("failure").inc()
        log.error("policy reload refused; keeping the last good policies", extra={"problems": problems or [error]})

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self.reload_if_changed)
            except Exception as exc:  # noqa: BLE001 - a dead watcher would ignore every later edit without a word
                log.exception("policy reload failed")
                self._refuse(f"{self.directory}: reload failed: {type(exc).__name__}: {exc}", [])
