"""A/B of guarded proxies on this host: two or more builds or settings, alternated against one scripted upstream.

    .venv/bin/python bench/proxy_ab.py --variant head=. --variant old=../old-checkout [--clients 32] [--requests 600]
    .venv/bin/python bench/proxy_ab.py --variant stream=. --variant json=.,HEEDFUL_STREAM_UPSTREAM=false

A variant is NAME=CHECKOUT[,ENV=VALUE...]: the proxy runs from that checkout (a `git worktree add` of another revision,
say) with its policies and model. This shared host's speed moves 2-4x between hours, so a figure from another run says
little: rounds alternate between the variants, and each round reports requests/s, p50 latency, and the proxy's CPU per
request split into the event loop (main thread) and everything else (scoring threads, onnxruntime's pools).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.local_server import free_port  # noqa: E402
from bench.proxy_bench import GOOD_USER, conversation, run_load, wait_ready  # noqa: E402


def parse_variant(text: str) -> tuple[str, Path, dict[str, str]]:
    name, _, rest = text.partition("=")
    checkout, *settings = rest.split(",")
    if not name or not checkout:
        raise argparse.ArgumentTypeError(f"expected NAME=CHECKOUT[,ENV=VALUE...], got {text!r}")
    return name, Path(checkout).resolve(), dict(s.split("=", 1) for s in settings)


def cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU of the process's threads: the main thread (the event loop) and all the others."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {"event loop": 0.0, "other threads": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        out["event loop" if tid == str(pid) else "other threads"] += (int(fields[11]) + int(fields[12])) / ticks
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", type=parse_variant, action="append", required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--words", type=int, default=60, help="reply length from the scripted upstream")
    parser.add_argument("--stream", action="store_true", help="streaming clients; p50 is then the time to first content")
    args = parser.parse_args()
    python = sys.executable
    up_port = free_port()
    upstream = subprocess.Popen([python, "-m", "app.scripted_upstream", "--port", str(up_port)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxies: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        wait_ready(f"http://127.0.0.1:{up_port}/v1/models")
        for name, checkout, settings in args.variant:
            port = free_port()
            env = os.environ | {"PYTHONPATH": str(checkout), "HEEDFUL_UPSTREAM": f"http://127.0.0.1:{up_port}/v1",
                                "HEEDFUL_POLICIES": str(checkout / "policies"), "HEEDFUL_SCORE_CACHE_TTL_S": "0",
                                "HEEDFUL_LOG_LEVEL": "warning"} | settings
            proxies[name] = (subprocess.Popen([python, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port",
                                               str(port)], cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL), port)
            wait_ready(f"http://127.0.0.1:{port}/readyz", 120)

        def body(i: int) -> dict[str, object]:
            return {"model": f"words:{args.words}",
                    "messages": conversation(2)[:-1] + [{"role": "user", "content": f"{GOOD_USER} ({i})"}]}

        for _, port in proxies.values():  # warm up
            asyncio.run(run_load(f"http://127.0.0.1:{port}/v1/chat/completions", body, 100, 4))
        print(f"{args.clients} clients, {args.requests} requests a round, {args.words}-word replies"
              + (", streamed (p50: time to first content)" if args.stream else ""))
        print("| round | variant | requests/s | p50 ms | event loop CPU ms/request | other threads CPU ms/request |")
        print("|---|---|---|---|---|---|")
        for round_number in range(1, args.rounds + 1):
            for name, (process, port) in proxies.items():
                before = cpu_seconds(process.pid)
                latencies, wall = asyncio.run(run_load(f"http://127.0.0.1:{port}/v1/chat/completions", body,
                                                       args.requests, args.clients, stream=args.stream))
                after = cpu_seconds(process.pid)
                per_request = {k: (after[k] - before[k]) / args.requests * 1000 for k in after}
                print(f"| {round_number} | {name} | {len(latencies) / wall:.0f} | "
                      f"{statistics.median(latencies) * 1000:.1f} | {per_request['event loop']:.1f} | "
                      f"{per_request['other threads']:.1f} |", flush=True)
    finally:
        for process, _ in proxies.values():
            process.terminate()
        upstream.terminate()


if __name__ == "__main__":
    main()
