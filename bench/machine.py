"""How fast this machine is right now, as one number beside a benchmark's figures.

The machines this project runs on differ by 2-4x in single-core speed from day to day (a shared host), so a latency
figure means little without it. The probe is a pure-Python loop: it measures the interpreter's speed on one core, which is
what the proxy's own code path runs on. The model probe times the shipped int8 model itself: its kernels' speed moved
2x between hosts whose Python loop timed the same (AVX2 without VNNI), and every guard-on figure follows it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

MODEL = Path(__file__).resolve().parents[1] / "classifiers" / "models" / "heedful-minilm-v1" / "model.onnx"


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


def model_probe(tokens: int = 128, runs: int = 30) -> float:
    """Milliseconds for one run of the shipped model on `tokens` tokens, one thread (the median of `runs`)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    feed = {i.name: np.ones((1, tokens), dtype=np.int64) for i in session.get_inputs()}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def probe_line() -> str:
    return (f"Machine speed probes (bench/machine.py): 10 million additions in a Python loop, best of 3, "
            f"{speed_probe():.2f} s; one 128-token run of the int8 model on one thread, median of 30, "
            f"{model_probe():.1f} ms. Compare runs only at similar values.")
