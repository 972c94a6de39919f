"""Soak benchmark: the guarded proxy under steady mixed load for minutes, with Redis and with the in-process store.

    .venv/bin/python bench/soak.py                                  # 10 minutes per store, 32 clients (~21 min in all)
    .venv/bin/python bench/soak.py --minutes 3 --stores memory --out /tmp/soak.md --probe

Traffic: plain JSON and SSE requests in a fixed rotation; most carry a draft the default policy repairs (the scripted
upstream's pacifying, sycophantic and rushed-advice scenarios), the rest pass or get crisis resources. Every user turn
is unique, so the score cache never answers and every draft is scored (and the cache fills as it would in use). The
policies are the repository's, except that the default policy's scoring_timeout_ms is raised (--scoring-timeout-ms):
32 clients on 2 cores queue for the scorer past the shipped 1.5 s, and the guard would then fail open without scoring,
which would leave the scorer's memory untested.
Every server is its own process on loopback (redis-server, scripted upstream, proxy); the RSS is the proxy's.

Reported per store: per minute, requests, errors and p50/p99 latency (JSON: whole response; SSE: to the end of the
stream); the proxy's RSS (and anonymous memory from /proc/PID/smaps_rollup) every 30 s with the machine's load.
Pass: 0 errors, and RSS from minute 2 to the end never more than 10% above its value at minute 2.
--probe runs the proxy under bench/soak_probe.py, which also logs the Python heap and glibc malloc figures every 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from app.local_server import free_port  # noqa: E402
from app.scripted_upstream import SCENARIOS  # noqa: E402

# (transport, scenario): the rotation every client walks through. Five of eight drafts get repaired by the default policy.
MIX = (("json", "pacification"), ("sse", "sycophancy"), ("json", "rushed_advice"), ("sse", "pacification"),
       ("json", "good"), ("sse", "rushed_advice"), ("json", "sycophancy"), ("sse", "crisis"))
USERS = {s.name: s.user for s in SCENARIOS}
SAMPLE_S = 30


@dataclass
class Minute:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class Sample:
    seconds: float
    rss_mib: float
    anonymous_mib: float
    load: float


@dataclass
class Soak:
    store: str
    minutes: list[Minute] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)

    def minute(self, index: int) -> Minute:
        while len(self.minutes) <= index:
            self.minutes.append(Minute())
        return self.minutes[index]

    @property
    def errors(self) -> int:
        return sum(sum(m.errors.values()) for m in self.minutes)

    @property
    def requests(self) -> int:
        return sum(len(v) for m in self.minutes for v in m.latencies.values()) + self.errors

    def growth_after(self, seconds: float) -> tuple[float, float, float]:
        """RSS at `seconds` (the first sample at or after it), the highest RSS after that, and the rise in percent."""
        later = [s for s in self.samples if s.seconds >= seconds - 1]
        if not later:
            return 0.0, 0.0, 0.0
        base, top = later[0].rss_mib, max(s.rss_mib for s in later)
        return base, top, 100 * (top - base) / base


def start(args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    # Never an unread pipe: a server that logs (a warning per Redis timeout under load) would fill it and then block,
    # stalling every request (a first 10-minute run did exactly that after ~9 minutes).
    output = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(args, cwd=REPO, env=os.environ | (env or {}), stdout=output, stderr=output)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, anonymous memory) of a process in MiB, from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return fields["Rss"], fields["Anonymous"]


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def request_body(index: int, scenario: str) -> dict[str, object]:
    # The ticket number makes each conversation unique (no score-cache hits); the scenario's trigger phrase stays in it.
    return {"model": "scripted", "messages": [{"role": "user", "content": f"{USERS[scenario]} (ticket {index})"}]}


async def one_request(client: httpx.AsyncClient, url: str, index: int) -> tuple[str, str, str]:
    """(transport, outcome, error): error is '' on success, else a short reason."""
    transport, scenario = MIX[index % len(MIX)]
    body = request_body(index, scenario)
    if transport == "json":
        response = await client.post(url, json=body)
        outcome = response.headers.get("x-heedful-outcome", "?")
        if response.status_code != 200:
            return transport, outcome, f"json HTTP {response.status_code}: {response.text[:200]}"
        content = response.json()["choices"][0]["message"]["content"]
        return transport, outcome, "" if isinstance(content, str) and content else "json: empty content"
    async with client.stream("POST", url, json=body | {"stream": True}) as response:
        outcome = response.headers.get("x-heedful-outcome", "stream")
        if response.status_code != 200:
            return transport, outcome, f"sse HTTP {response.status_code}: {(await response.aread())[:200]!r}"
        text, done = "", False
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                continue
            event = json.loads(line[6:])
            if "error" in event:
                return transport, outcome, f"sse error event: {str(event['error'])[:200]}"
            for choice in event.get("choices", []):
                text += choice.get("delta", {}).get("content") or ""
        if not done:
            return transport, outcome, "sse: no [DONE]"
        return transport, outcome, "" if text else "sse: empty content"


async def load(url: str, soak: Soak, clients: int, seconds: float, started: float) -> None:
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def worker() -> None:
            while time.monotonic() - started < seconds:
                index = next(counter)
                began = time.monotonic()
                try:
                    transport, outcome, error = await one_request(client, url, index)
                except Exception as exc:  # every failure counts as an error, whatever it is
                    transport, outcome, error = MIX[index % len(MIX)][0], "?", f"{type(exc).__name__}: {exc}"[:200]
                ended = time.monotonic()
                minute = soak.minute(int((ended - started) // 60))
                if error:
                    minute.errors[error.split(":")[0]] += 1
                    if len(soak.error_examples) < 10:
                        soak.error_examples.append(f"request {index}: {error}")
                else:
                    minute.latencies[transport].append(ended - began)
                    minute.outcomes[f"{transport} {outcome}"] += 1

        await asyncio.gather(*(worker() for _ in range(clients)))


async def sample_memory(pid: int, soak: Soak, seconds: float, started: float) -> None:
    while True:
        elapsed = time.monotonic() - started
        rss, anonymous = memory_mib(pid)
        soak.samples.append(Sample(elapsed, rss, anonymous, os.getloadavg()[0]))
        print(f"[{soak.store}] {elapsed:5.0f} s  RSS {rss:6.1f} MiB  anon {anonymous:6.1f} MiB  load {os.getloadavg()[0]:.1f}  "
              f"requests {soak.requests}  errors {soak.errors}", file=sys.stderr, flush=True)
        if elapsed >= seconds:
            return
        await asyncio.sleep(min(SAMPLE_S, max(0.0, seconds - elapsed)))


async def run_soak(url: str, pid: int, soak: Soak, clients: int, seconds: float) -> None:
    started = time.monotonic()
    await asyncio.gather(load(url, soak, clients, seconds, started), sample_memory(pid, soak, seconds, started))


def soak_policies(folder: Path, scoring_timeout_ms: int) -> Path:
    """The repository's policies, with the default policy's scoring timeout set (0: left as shipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in (REPO / "policies").glob("*.yaml"):
        text = source.read_text()
        if source.name == "default.yaml" and scoring_timeout_ms:
            if "\n  limits:\n" not in text:
                raise SystemExit("policies/default.yaml has no spec.limits block to set scoring_timeout_ms in")
            text = text.replace("\n  limits:\n", f"\n  limits:\n    scoring_timeout_ms: {scoring_timeout_ms}\n", 1)
        (folder / source.name).write_text(text)
    return folder


def soak_store(store: str, args: argparse.Namespace, upstream_url: str, policies: Path) -> Soak:
    redis = None
    env = {"HEEDFUL_UPSTREAM": upstream_url, "HEEDFUL_POLICIES": str(policies), "HEEDFUL_LOG_LEVEL": "warning"}
    if store == "redis":
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        redis_port = free_port()
        redis = subprocess.Popen([binary, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env["HEEDFUL_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    port = free_port()
    serve = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.probe:
        serve = [sys.executable, str(REPO / "bench" / "soak_probe.py"), str(args.probe_dir / f"probe-{store}.jsonl"),
                 *serve[3:]]
    proxy = start(serve, env, args.probe_dir / f"proxy-{store}.log")
    soak = Soak(store)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proxy)
        asyncio.run(run_soak(f"http://127.0.0.1:{port}/v1/chat/completions", proxy.pid, soak, args.clients,
                             args.minutes * 60))
        if proxy.poll() is not None:
            soak.error_examples.append(f"the proxy exited with {proxy.returncode}")
    finally:
        for process in (proxy, redis):
            if process is not None:
                process.terminate()
                try:
                    process.wait(60)  # a graceful shutdown drains background work; a loaded machine makes it slow
                except subprocess.TimeoutExpired:
                    process.kill()
    return soak


def report(soaks: list[Soak], args: argparse.Namespace, command: str, started: str) -> str:
    timeout = f"{args.scoring_timeout_ms} ms" if args.scoring_timeout_ms else "as shipped (1500 ms)"
    out = ["# Soak benchmark", "", f"`{command}` on {os.cpu_count()} cores, started {started}; {args.clients} clients, "
           f"{args.minutes:g} minutes per store, default policy's scoring timeout {timeout}.", ""]
    for soak in soaks:
        base, top, rise = soak.growth_after(120)
        verdict = "pass" if soak.errors == 0 and rise <= 10 else "FAIL"
        out += [f"## {soak.store} store ({'redis-server on loopback' if soak.store == 'redis' else 'no Redis: in-process store'})",
                "", f"{soak.requests:,} requests, {soak.errors} errors; RSS at minute 2 {base:.0f} MiB, highest after it "
                f"{top:.0f} MiB ({rise:+.1f}%): **{verdict}** (target: 0 errors, within 10%).", "",
                "| minute | requests | errors | JSON p50 ms | JSON p99 ms | SSE p50 ms | SSE p99 ms | outcomes |",
                "|---|---|---|---|---|---|---|---|"]
        for i, m in enumerate(soak.minutes[: math.ceil(args.minutes)]):
            count = sum(len(v) for v in m.latencies.values()) + sum(m.errors.values())
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(m.outcomes.items()))
            out.append(f"| {i + 1} | {count} | {sum(m.errors.values())} | {pct(m.latencies['json'], 50):.0f} | "
                       f"{pct(m.latencies['json'], 99):.0f} | {pct(m.latencies['sse'], 50):.0f} | "
                       f"{pct(m.latencies['sse'], 99):.0f} | {outcomes} |")
        out += ["", "| seconds | RSS MiB | anonymous MiB | load (1 min) |", "|---|---|---|---|"]
        out += [f"| {s.seconds:.0f} | {s.rss_mib:.1f} | {s.anonymous_mib:.1f} | {s.load:.1f} |" for s in soak.samples]
        if soak.error_examples:
            out += ["", "Errors, first few:", "", *[f"- {e}" for e in soak.error_examples]]
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="minutes of load per store (default 10)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--stores", nargs="+", choices=("redis", "memory"), default=["redis", "memory"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "soak.md")
    parser.add_argument("--scoring-timeout-ms", type=int, default=60000,
                        help="the default policy's scoring timeout during the soak (default 60000; 0 keeps the shipped 1500)")
    parser.add_argument("--probe", action="store_true", help="log the proxy's Python heap and malloc figures (bench/soak_probe.py)")
    parser.add_argument("--probe-dir", type=Path, default=Path("/tmp"),
                        help="where the proxy's output (proxy-STORE.log) and --probe's probe-STORE.jsonl go")
    args = parser.parse_args()
    command = " ".join([".venv/bin/python", "bench/soak.py", *sys.argv[1:]])
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    up_port = free_port()
    upstream = start([sys.executable, "-m", "app.scripted_upstream", "--port", str(up_port)])
    try:
        wait_ready(f"http://127.0.0.1:{up_port}/v1/models", upstream)
        with tempfile.TemporaryDirectory() as tmp:
            policies = soak_policies(Path(tmp) / "policies", args.scoring_timeout_ms)
            soaks = []
            for store in args.stores:
                soaks.append(soak_store(store, args, f"http://127.0.0.1:{up_port}/v1", policies))
                args.out.write_text(report(soaks, args, command, started))  # each store's figures kept as soon as known
    finally:
        upstream.terminate()
    text = report(soaks, args, command, started)
    args.out.write_text(text)
    print(text)
    sys.exit(0 if all(s.errors == 0 for s in soaks) else 1)


if __name__ == "__main__":
    main()
