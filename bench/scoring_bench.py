"""Classifier benchmark on one core: the work that waits for the draft, scoring from scratch, memory, cold start, batch.

    .venv/bin/python bench/scoring_bench.py [--repeats 200] [--out bench/results/scoring.md]

"Waits for the draft" is Scorer.score_reply on a context prepared beforehand (the proxy prepares it while the upstream
generates); "from scratch" is prepare + score_reply. Replies are measured at 32, 64 and 128 tokens in conversations of 1
to 50 turns. Whole replies are read in windows, so long replies (100 to 400 words) are measured two ways: all windows
after the draft (an upstream that cannot stream), and the work after the last token when the windows are read while the
draft is written (classifiers.reading.ReplyReader, what the proxy does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import probe_line  # noqa: E402
from classifiers import ReplyReader, Scorer  # noqa: E402

SENTENCE = "It sounds like the move took more out of you than you expected, and the quiet evenings are the hardest part. "


def reply_of(tokens: int, scorer: Scorer) -> str:
    text = SENTENCE * (tokens // 20 + 2)
    ids = scorer._encoder._tokenizer.encode(text, add_special_tokens=False).ids[:tokens]  # exact token count
    return scorer._encoder._tokenizer.decode(ids)


def conversation(turns: int) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for i in range(turns - 1):
        messages += [{"role": "user", "content": f"We moved to a new city in spring, part {i} of the story, and it has been lonely."},
                     {"role": "assistant", "content": "That sounds isolating. What did your days look like before the move?"}]
    return messages + [{"role": "user", "content": "I just feel flat every evening and I don't know why it's hitting me now."}]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def rss_mib() -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cold_start() -> float:
    code = ("import time; t=time.perf_counter(); from classifiers import Scorer; s=Scorer(threads=1); "
            "s.score([{'role':'user','content':'I feel awful'}], 'Sorry to hear that.'); print(time.perf_counter()-t)")
    started = time.perf_counter()
    inner = float(subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout)
    return inner, time.perf_counter() - started


def batch_1000(tmp: Path) -> float:
    source = tmp / "batch.jsonl"
    with source.open("w") as f:
        for i in range(1000):
            f.write(json.dumps({"id": i, "messages": conversation(1 + i % 5), "reply": SENTENCE * (1 + i % 4)}) + "\n")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "app.cli", "score", "--input", str(source), "--output", str(tmp / "out.jsonl")],
                   cwd=REPO, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scoring.md")
    args = parser.parse_args()
    scorer = Scorer(threads=1)
    rss_loaded, _ = rss_mib()
    rows = ["| conversation turns | reply tokens | after the draft p50 ms | p99 ms | from scratch p50 ms | p99 ms |",
            "|---|---|---|---|---|---|"]
    after_all: list[float] = []
    for turns in (1, 5, 20, 50):
        messages = conversation(turns)
        for tokens in (32, 64, 128):
            reply = reply_of(tokens, scorer)
            prepared = scorer.prepare(messages)
            for _ in range(10):
                scorer.score_reply(prepared, reply)
            after, scratch = [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                scorer.score_reply(prepared, reply)
                after.append(time.perf_counter() - t)
            for _ in range(args.repeats // 4):
                t = time.perf_counter()
                scorer.score(messages, reply)
                scratch.append(time.perf_counter() - t)
            after_all += after
            rows.append(f"| {turns} | {tokens} | {pct(after, 50):.1f} | {pct(after, 99):.1f} | {pct(scratch, 50):.1f} | {pct(scratch, 99):.1f} |")
    long_rows = ["| reply words | windows | all windows after the draft p50 ms | p99 ms | "
                 "after the last token, read while written p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
    after_last_all: list[float] = []
    messages = conversation(5)
    prepared = scorer.prepare(messages)
    for words in (100, 200, 400):
        reply = " ".join((SENTENCE * (words // 20 + 2)).split()[:words])
        windows = len(scorer._encoder.reply_windows([prepared.view], [reply])[0])
        whole, after_last = [], []
        for _ in range(max(args.repeats // 4, 10)):
            t = time.perf_counter()
            scorer.score_reply(prepared, reply)
            whole.append(time.perf_counter() - t)
            reader = ReplyReader(scorer, prepared)
            sentences = reply.split(". ")
            for end in range(1, len(sentences)):
                reader.feed(". ".join(sentences[:end]) + ".")
            t = time.perf_counter()
            reader.finish(reply)
            after_last.append(time.perf_counter() - t)
        after_last_all += after_last
        long_rows.append(f"| {words} | {windows} | {pct(whole, 50):.1f} | {pct(whole, 99):.1f} | "
                         f"{pct(after_last, 50):.1f} | {pct(after_last, 99):.1f} |")
    _, rss_peak = rss_mib()
    inner, outer = cold_start()
    with tempfile.TemporaryDirectory() as tmp:
        batch = batch_1000(Path(tmp))
    text = "\n".join([
        "# Scoring benchmark", "",
        f"`.venv/bin/python bench/scoring_bench.py --repeats {args.repeats}`, onnxruntime with 1 intra-op thread, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.", "", *rows, "", "Long replies, read whole (5-turn conversation):",
        "", *long_rows, "",
        f"All reply sizes and conversation lengths together, after the draft: p50 {pct(after_all, 50):.1f} ms, "
        f"p99 {pct(after_all, 99):.1f} ms. Long replies read while written, after the last token: p50 "
        f"{pct(after_last_all, 50):.1f} ms, p99 {pct(after_last_all, 99):.1f} ms.",
        f"RSS with the model loaded: {rss_loaded:.0f} MiB (peak during the run {rss_peak:.0f} MiB).",
        f"Cold start to first score: {inner * 1000:.0f} ms from import (process start included: {outer * 1000:.0f} ms).",
        f"`heedful score` on 1,000 lines (2 threads, process start included): {batch:.1f} s.", probe_line(), ""])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
