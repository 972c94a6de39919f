"""Policy-file faults during traffic: through a sequence of broken and good edits the proxy keeps answering with the last
good policy, reports each broken edit (log, metric, /readyz last_policy_error naming the file), and puts the next good
edit live. Before the fix a 2,000-deep file killed the watcher silently and every later edit was ignored."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import client_for, wait_for
from tests.policy_faults.faults import FAULTS

# A small valid policy for the good edits: the shipped one takes seconds to check on a busy machine, times eleven.
GOOD = """apiVersion: heedful/v1
kind: Policy
metadata: {{name: default, version: "{version}"}}
spec:
  default: true
  rules:
    - name: crisis-resources
      when: "'crisis' in flags"
      action: prepend
      text: "If you are in danger, call your local emergency number."
"""


def _good(version: str) -> str:
    return GOOD.format(version=version)


def _failures(url: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith('heedful_policy_reloads_total{outcome="failure"}'):
            return float(line.split()[-1])
    return 0.0


class Traffic:
    """Guarded completions in a loop on another thread, each answer's status and policy version kept."""

    def __init__(self, proxy) -> None:  # type: ignore[no-untyped-def]
        self.client = client_for(proxy)
        self.answers: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.client.chat.completions.with_raw_response.create(
                    model="scripted-empathy-1", messages=[{"role": "user", "content": "I presented my project today."}])
                raw.parse()
                self.answers.append((raw.http_response.status_code, raw.headers.get("x-heedful-policy-version", "")))
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_broken_and_good_edits_during_traffic(make_proxy, policy_dir: Path, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="heedful.policy")
    proxy = make_proxy()
    path = policy_dir / "default.yaml"
    ready = lambda: httpx.get(f"{proxy.url}/readyz").json()  # noqa: E731
    with Traffic(proxy) as traffic:
        for index, fault in enumerate(FAULTS):
            good_version = str(10 + index)
            fault.apply(path)
            failures_before = _failures(proxy.url)
            assert wait_for(lambda: _failures(proxy.url) > failures_before or
                             str(path) in (ready()["last_policy_error"] or "")), fault.name
            error = ready()["last_policy_error"] or ""
            assert str(path) in error and fault.message in error, (fault.name, error)
            assert ready()["policies"]["default"] == (str(9 + index) if index else "2"), fault.name
            # The next good edit goes live: the watcher survived.
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            elif path.exists() or path.is_symlink():
                path.unlink()
            path.write_text(_good(good_version))
            assert wait_for(lambda: ready()["policies"]["default"] == good_version), fault.name
            assert ready()["last_policy_error"] is None
        answered = len(traffic.answers)
        assert wait_for(lambda: len(traffic.answers) > answered + 2)
    assert traffic.errors == []
    assert traffic.answers and all(status == 200 for status, _ in traffic.answers)
    assert {version for _, version in traffic.answers} <= {"2", *(str(10 + i) for i in range(len(FAULTS)))}
    assert _failures(proxy.url) >= len(FAULTS)
    logged = [r for r in caplog.records if r.getMessage().startswith("policy reload refused")]
    assert len(logged) >= len(FAULTS)


def test_a_watcher_fault_nobody_foresaw_is_reported_and_the_watcher_lives_on(make_proxy, policy_dir: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the loader: whatever a reload raises is logged, counted and shown, and the next edit is still read."""
    import app.policy.watcher as watcher

    proxy = make_proxy()
    path = policy_dir / "default.yaml"
    real = watcher.load_policy_set

    def exploding(directory: Path):  # type: ignore[no-untyped-def]
        raise MemoryError("simulated: out of memory while loading")

    monkeypatch.setattr(watcher, "load_policy_set", exploding)
    path.write_text(_good("5"))
    assert wait_for(lambda: "MemoryError" in (httpx.get(f"{proxy.url}/readyz").json()["last_policy_error"] or ""))
    assert _failures(proxy.url) >= 1
    monkeypatch.setattr(watcher, "load_policy_set", real)
    path.write_text(_good("6"))
    assert wait_for(lambda: httpx.get(f"{proxy.url}/readyz").json()["policies"]["default"] == "6")
