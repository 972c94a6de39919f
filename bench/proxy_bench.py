"""Proxy benchmark: the latency Heedful adds and the load it carries, against the scripted local upstream.

    .venv/bin/python bench/proxy_bench.py [--requests 300] [--out bench/results/proxy.md]

Every server is its own process on loopback (upstream, guarded proxy, unguarded proxy), so RSS and CPU are the proxy's.
Added latency = client-seen latency through the proxy minus client-seen latency straight to the upstream, same load; the
proxy's own heedful_added_latency_seconds histogram is reported beside it. The score cache is off, so every request is
scored from scratch. The load generator (httpx, async) shares the 2 cores, which lowers the requests/s figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from app.local_server import free_port  # noqa: E402
from bench.machine import probe_line  # noqa: E402

GOOD_USER = "I have a presentation tomorrow and I'm stressed. What can I do tonight to prepare?"


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=REPO, env=os.environ | (env or {}), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(url: str, timeout: float = 30) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} never became ready")


def rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def conversation(turns: int) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for i in range(turns - 1):
        messages += [{"role": "user", "content": f"Earlier I mentioned the project at work, part {i}, and how the team reacted."},
                     {"role": "assistant", "content": "That sounds like it has been weighing on you. What happened next?"}]
    return messages + [{"role": "user", "content": GOOD_USER}]


async def run_load(url: str, body_for, count: int, concurrency: int, stream: bool = False,  # type: ignore[no-untyped-def]
                   to_end: bool = False) -> tuple[list[float], float]:
    """Latencies (s) of `count` requests at a fixed concurrency, and the wall time. For streams: time to first content
    (or, with to_end, to the stream's end)."""
    latencies: list[float] = []
    queue = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def worker() -> None:
            for i in queue:
                body = body_for(i)
                start = time.perf_counter()
                if stream:
                    async with client.stream("POST", url, json=body | {"stream": True}) as response:
                        first: float | None = None
                        async for line in response.aiter_lines():  # read to the end; note the first content
                            if first is None and '"content": "' in line and '"content": ""' not in line:
                                first = time.perf_counter() - start
                        end = time.perf_counter() - start
                        latencies.append(end if to_end or first is None else first)
                else:
                    response = await client.post(url, json=body)
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - start)
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "proxy.md")
    args = parser.parse_args()
    python = sys.executable
    up_port, on_port, off_port, slow_port, slow_proxy_port, paced_port, paced_proxy_port = (free_port() for _ in range(7))
    upstream = start([python, "-m", "app.scripted_upstream", "--port", str(up_port)])
    slow_upstream = start([python, "-m", "app.scripted_upstream", "--port", str(slow_port), "--latency-s", "0.2"])
    # A model writing at a realistic pace: one word every 20 ms (about 65 tokens/s).
    paced_upstream = start([python, "-m", "app.scripted_upstream", "--port", str(paced_port), "--token-delay-s", "0.02"])
    common = {"HEEDFUL_UPSTREAM": f"http://127.0.0.1:{up_port}/v1", "HEEDFUL_POLICIES": str(REPO / "policies"),
              "HEEDFUL_SCORE_CACHE_TTL_S": "0", "HEEDFUL_LOG_LEVEL": "warning"}
    heedful = [python, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
    for port in (up_port, slow_port, paced_port):  # the upstreams up first: the proxy's start is timed on its own
        wait_ready(f"http://127.0.0.1:{port}/v1/models")
    cold_started = time.perf_counter()
    guarded = start([*heedful, "--port", str(on_port)], common)
    wait_ready(f"http://127.0.0.1:{on_port}/readyz")
    cold_start = time.perf_counter() - cold_started
    unguarded = start([*heedful, "--port", str(off_port), "--no-guard"], common)
    slow_guarded = start([*heedful, "--port", str(slow_proxy_port)], common | {"HEEDFUL_UPSTREAM": f"http://127.0.0.1:{slow_port}/v1"})
    paced_guarded = start([*heedful, "--port", str(paced_proxy_port)],
                          common | {"HEEDFUL_UPSTREAM": f"http://127.0.0.1:{paced_port}/v1"})
    wait_ready(f"http://127.0.0.1:{up_port}/v1/models")
    wait_ready(f"http://127.0.0.1:{off_port}/healthz")
    wait_ready(f"http://127.0.0.1:{slow_proxy_port}/readyz")
    wait_ready(f"http://127.0.0.1:{slow_port}/v1/models")
    wait_ready(f"http://127.0.0.1:{paced_proxy_port}/readyz")
    wait_ready(f"http://127.0.0.1:{paced_port}/v1/models")
    direct, on, off = (f"http://127.0.0.1:{p}/v1/chat/completions" for p in (up_port, on_port, off_port))
    n = args.requests
    rows: list[str] = []

    def body(turns: int = 2, words: int = 60):  # type: ignore[no-untyped-def]
        return lambda i: {"model": f"words:{words}", "messages": conversation(turns)[:-1] + [
            {"role": "user", "content": f"{GOOD_USER} (request {i})"}]}

    try:
        for url in (direct, on, off):
            asyncio.run(run_load(url, body(), 60, 4))  # warm up
        base, _ = asyncio.run(run_load(direct, body(), n, 1))
        results = {}
        for name, url, conc, stream in (("guard off", off, 1, False), ("guard on", on, 1, False),
                                        ("guard off", off, 32, False), ("guard on", on, 32, False)):
            lat, wall = asyncio.run(run_load(url, body(), n if conc == 1 else n * 3, conc, stream))
            results[(name, conc)] = (lat, wall)
        rows += ["| configuration | clients | p50 ms | p99 ms | added p50 ms | added p99 ms | requests/s |", "|---|---|---|---|---|---|---|"]
        rows.append(f"| direct to upstream | 1 | {pct(base, 50):.1f} | {pct(base, 99):.1f} | - | - | {len(base) / sum(base):.0f} |")
        for (name, conc), (lat, wall) in results.items():
            added = f"{pct(lat, 50) - pct(base, 50):.1f} | {pct(lat, 99) - pct(base, 99):.1f}" if conc == 1 else "- | -"
            rows.append(f"| {name} | {conc} | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} | {added} | {len(lat) / wall:.0f} |")

        # Streaming: time to first content byte. Direct: when the upstream has sent two sentences (the holdback).
        stream_body = lambda i: {"model": "m", "messages": [{"role": "user", "content": f"{GOOD_USER} ({i})"}]}  # noqa: E731
        direct_2s, _ = asyncio.run(run_two_sentences(direct, stream_body, n // 2))
        via_proxy, _ = asyncio.run(run_load(on, stream_body, n // 2, 1, stream=True))
        rows += ["", "| streaming, guard on, 2-sentence holdback | p50 ms | p99 ms |", "|---|---|---|",
                 f"| upstream sends 2 sentences (direct) | {pct(direct_2s, 50):.1f} | {pct(direct_2s, 99):.1f} |",
                 f"| first content byte through the proxy | {pct(via_proxy, 50):.1f} | {pct(via_proxy, 99):.1f} |",
                 f"| added to time to first byte | {pct(via_proxy, 50) - pct(direct_2s, 50):.1f} | {pct(via_proxy, 99) - pct(direct_2s, 99):.1f} |"]

        # With an instant upstream the context pass cannot hide behind generation, so it counts in full; with an
        # upstream that takes 200 ms (still fast for an LLM) it runs while the draft is generated, as in real use.
        slow_on = f"http://127.0.0.1:{slow_proxy_port}/v1/chat/completions"
        slow_direct = f"http://127.0.0.1:{slow_port}/v1/chat/completions"
        asyncio.run(run_load(slow_on, body(), 5, 1))
        rows += ["", "| conversation turns | reply words | added p50 ms, instant upstream | added p50 ms, upstream answers in 200 ms |",
                 "|---|---|---|---|"]
        for turns, words in ((2, 50), (10, 50), (50, 50), (2, 200), (2, 800), (50, 800)):
            lat_on, _ = asyncio.run(run_load(on, body(turns, words), n // 3, 1))
            lat_direct, _ = asyncio.run(run_load(direct, body(turns, words), n // 3, 1))
            slow_lat_on, _ = asyncio.run(run_load(slow_on, body(turns, words), 20, 1))
            slow_lat_direct, _ = asyncio.run(run_load(slow_direct, body(turns, words), 20, 1))
            rows.append(f"| {turns} | {words} | {pct(lat_on, 50) - pct(lat_direct, 50):.1f} | "
                        f"{pct(slow_lat_on, 50) - pct(slow_lat_direct, 50):.1f} |")
        # Long replies written at a realistic pace, JSON client: the proxy reads the upstream's stream and scores windows
        # as sentences complete, so what it adds after the stream's end is the last window at most. Timed from the
        # upstream's own record of when each stream ended (same machine, same clock) to the client's last byte, so the
        # upstream's pace under the proxy's load does not count. The scripted model, like llama.cpp's server, sends its
        # stop one decoding step after the last word.
        paced_on = f"http://127.0.0.1:{paced_proxy_port}/v1/chat/completions"
        rows += ["", "| reply words, written at 50 words/s | after the stream's end through the proxy p50 ms | p99 ms | windows |",
                 "|---|---|---|---|"]
        paced_requests = max(n // 20, 8)
        for words in (100, 400):
            after = asyncio.run(run_after_end(paced_on, f"http://127.0.0.1:{paced_port}/scripted/stream-ends", body(5, words),
                                              paced_requests))
            rows.append(f"| {words} | {pct(after, 50):.1f} | {pct(after, 99):.1f} | {max(1, round(words * 1.3 / 70))} (approx.) |")
        rss, peak = rss_mib(guarded.pid)
        metrics = httpx.get(f"http://127.0.0.1:{on_port}/metrics").text
        rows += ["", f"Cold start to ready (process start to /readyz 200): {cold_start * 1000:.0f} ms. "
                     f"Guarded proxy RSS after the run: {rss:.0f} MiB (peak {peak:.0f} MiB).",
                 f"Server-side guard time histogram: {server_side_summary(metrics)}.", probe_line()]
    finally:
        for process in (guarded, unguarded, upstream, slow_guarded, slow_upstream, paced_guarded, paced_upstream):
            process.terminate()
    text = "\n".join(["# Proxy benchmark", "", f"`{' '.join(['.venv/bin/python', 'bench/proxy_bench.py', '--requests', str(n)])}` "
                      f"on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.", "", *rows, ""])
    args.out.write_text(text)
    print(text)


async def run_two_sentences(url: str, body_for, count: int) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
    import json
    import re

    latencies = []
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(count):
            start, text = time.perf_counter(), ""
            async with client.stream("POST", url, json=body_for(i) | {"stream": True}) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        choices = json.loads(line[6:])["choices"]
                        text += (choices[0]["delta"].get("content") or "") if choices else ""
                        if len(re.findall(r"[.!?](\s|$)", text)) >= 2 and not latencies[i:]:
                            latencies.append(time.perf_counter() - start)
            if not latencies[i:]:
                latencies.append(time.perf_counter() - start)
    return latencies, 0.0


async def run_after_end(url: str, ends_url: str, body_for, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds from each upstream stream's end (as the upstream recorded it) to the client's last byte, one client."""
    after = []
    async with httpx.AsyncClient(timeout=120) as client:
        for i in range(count):
            response = await client.post(url, json=body_for(i))
            received = time.time()
            response.raise_for_status()
            after.append(received - (await client.get(ends_url)).json()[-1])
    return after


def server_side_summary(metrics: str) -> str:
    buckets = []
    for line in metrics.splitlines():
        if line.startswith("heedful_added_latency_seconds_bucket{") and 'stream="false"' in line:
            le = line.split('le="')[1].split('"')[0]
            buckets.append((le, float(line.rsplit(" ", 1)[1])))
    if not buckets:
        return "n/a"
    total = buckets[-1][1]
    p50 = next(le for le, c in buckets if c >= total * 0.5)
    p99 = next(le for le, c in buckets if c >= total * 0.99)
    return f"{int(total)} non-streaming requests, p50 <= {float(p50) * 1000:g} ms, p99 <= {float(p99) * 1000:g} ms (bucket bounds)"


if __name__ == "__main__":
    main()
