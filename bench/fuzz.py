"""The long fuzz run: >= 10,000 hostile requests (tests/fuzz/hostile.py) against a real `heedful serve` process.

    .venv/bin/python bench/fuzz.py [--requests 10000] [--clients 8] [--minutes 10] [--out bench/results/fuzz.md]

The proxy runs as its own process (uvloop, httptools, the shipped policies, the real model) in front of the scripted
upstream on loopback; Hypothesis generates the requests, which go out in batches of --clients at once. Every answer is
checked as in CI (tests/fuzz): no 5xx, no reset or hang, every error an OpenAI error object with x-heedful-request-id,
every stream ending in [DONE] or an error event. Writes counts and one example per kind of anomaly to --out; exits 1 if
there was any anomaly (or the proxy died).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from app.local_server import LocalServer, free_port  # noqa: E402
from app.scripted_upstream import ScriptedUpstream  # noqa: E402
from tests.fuzz.hostile import FuzzRequest, Tally, requests, send  # noqa: E402


def start_proxy(upstream_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEEDFUL_")} | {"PYTHONPATH": str(REPO)}
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--upstream",
                                    f"{upstream_url}/v1", "--policies", str(REPO / "policies"), "--log-level", "warning"],
                                   cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the proxy exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the proxy never became ready")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Enough(Exception):
    """Raised to end generation once enough requests were sent or time is up (Hypothesis has no other way out)."""


def run(url: str, total: int, clients: int, minutes: float, tally: Tally) -> None:
    deadline = time.monotonic() + minutes * 60
    local = threading.local()
    lock = threading.Lock()

    def one(request: FuzzRequest) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        verdict = send(local.client, url, request)
        with lock:
            tally.add(request, verdict)

    pool = ThreadPoolExecutor(clients)

    @settings(max_examples=math.ceil(total / clients) * 3, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(requests(), min_size=clients, max_size=clients))
    def fuzz(batch: list[FuzzRequest]) -> None:
        if tally.sent >= total or time.monotonic() > deadline:
            raise _Enough
        list(pool.map(one, batch))
        if tally.sent % 500 < clients:
            print(f"{tally.sent} sent, anomalies {tally.anomalies or 0}", file=sys.stderr, flush=True)

    try:
        fuzz()
    except _Enough:
        pass
    finally:
        pool.shutdown()


def report(tally: Tally, args: argparse.Namespace, seconds: float, rss: tuple[float, float], alive: bool) -> str:
    table = lambda rows: "\n".join(f"| {k} | {v} |" for k, v in rows)  # noqa: E731
    lines = ["# Fuzz run", "",
             f"`.venv/bin/python bench/fuzz.py --requests {args.requests} --clients {args.clients}` on "
             f"{datetime.date.today()}, {os.cpu_count()} cores shared with other work; requests from tests/fuzz/hostile.py "
             f"(Hypothesis), against `heedful serve` (real model, shipped policies) and the scripted upstream.", "",
             f"Sent **{tally.sent}** requests in {seconds:.0f} s ({tally.sent / max(seconds, 1e-9):.1f}/s, {args.clients} "
             f"at a time); {tally.streams} answers were streams. Proxy RSS {rss[0]:.0f} MiB at start, {rss[1]:.0f} MiB at "
             f"the end; proxy process {'still running' if alive else 'DIED'} at the end.", "",
             f"**Anomalies: {sum(tally.anomalies.values())}** (5xx, reset, hang, error not OpenAI-shaped or without "
             "x-heedful-request-id, stream not ending in [DONE] or an error event).", "",
             "| anomaly | count |", "|---|---|", table(sorted(tally.anomalies.items())) or "| none | 0 |", "",
             "| status | answers |", "|---|---|", table(sorted(tally.by_status.items())), "",
             "| endpoint and kind of request | sent |", "|---|---|", table(sorted(tally.by_kind.items())), ""]
    for name, (request, verdict) in sorted(tally.examples.items()):
        lines += [f"Example `{name}`: {request.path} {request.kind}, content-type {request.content_type}, "
                  f"body {request.body[:200]!r} -> {verdict.status} {verdict.detail[:200]!r}", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--minutes", type=float, default=10, help="stop sending after this long, however many were sent")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fuzz.md")
    args = parser.parse_args()
    scripted = ScriptedUpstream()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"heedful-fuzz-{os.getpid()}.log"
    with LocalServer(scripted.app) as upstream:
        process, url = start_proxy(upstream.url, log)
        try:
            rss_start = rss_mib(process.pid)
            tally = Tally()
            started = time.perf_counter()
            run(url, args.requests, args.clients, args.minutes, tally)
            seconds = time.perf_counter() - started
            alive = process.poll() is None
            rss_end = rss_mib(process.pid) if alive else float("nan")
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = report(tally, args, seconds, (rss_start, rss_end), alive)
    args.out.write_text(text + "\n")
    print(text)
    print(f"proxy log: {log}", file=sys.stderr)
    return 0 if alive and not tally.anomalies else 1


if __name__ == "__main__":
    sys.exit(main())
