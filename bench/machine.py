"""How fast this machine is right now, as one number beside a benchmark's figures.

The machines this project runs on differ by 2-4x in single-core speed from day to day (a shared host), so a latency
figure means little without it. The probe is a pure-Python loop: it measures the interpreter's speed on one core, which is
what the proxy's own code path runs on.
"""

from __future__ import annotations

import time


def speed_probe(rounds: int = 3) -> float:
    """Seconds for 10 million additions in a Python loop (the best of `rounds`; lower is faster)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def probe_line() -> str:
    return (f"Machine speed probe (bench/machine.py, 10 million additions in a Python loop, best of 3): "
            f"{speed_probe():.2f} s; compare runs only at similar values.")
