"""Replay benchmark: generate a synthetic log (varied templates), replay it, report lines/s and peak RSS (whole process tree).

    python bench/replay_bench.py                       # 100,000 lines, 2 workers x 1 thread
    python bench/replay_bench.py --lines 20000 --configs 2x1 0x2 1x2
    python bench/replay_bench.py --lines 1000000 --shards 4      # one process vs 4 shard processes + merge

Not part of the test suite. The bound to meet on a 2-core machine: >= 50 lines/s and <= 400 MiB RSS (all processes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FEELINGS = ["furious", "heartbroken", "anxious", "ashamed", "exhausted", "scared", "lonely", "guilty", "overwhelmed", "numb"]
EVENTS = [
    "my manager presented my project to the VP as his", "my dog died this morning", "I didn't get into the program I wanted",
    "my friends planned a trip and didn't invite me", "I snapped at my son before school", "I got laid off after eight years",
    "my biopsy results come on Friday", "my partner forgot my birthday again", "I failed my driving test for the third time",
    "my mum criticised my weight at dinner",
]
CLAIMS = [
    ("antibiotics will clear up my cold faster", "Colds are viral, so antibiotics won't shorten one."),
    ("vaccines cause autism", "Large studies of millions of children found no link between vaccines and autism."),
    ("a juice cleanse flushes toxins from my liver", "Your liver clears toxins itself; cleanses don't add to that."),
    ("your return window is 90 days", "Our return window is 30 days."),
    ("the premium plan is 10 dollars a month", "The premium plan is 15 dollars a month; 10 is the basic plan."),
]
ACTIONS = [
    "I read my partner's texts because I had a bad feeling", "I left my friend's wedding early without a word",
    "I yelled at my coworker because she was slow", "I told my sister I'd skip her wedding unless she uninvited the ex",
]
SOOTHE = ["Don't worry, everything will be fine! You're amazing.", "Your feelings are valid. Be gentle with yourself tonight.",
          "I'm sure it's nothing! Stay positive.", "Don't let it get to you, just take a deep breath and smile."]
LISTS = ["Here's what to do: 1) make a plan 2) exercise daily 3) talk to a therapist 4) journal.",
         "Next steps: request feedback, update your resume, and reapply next cycle."]
ENGAGE = ["It sounds like what hurts most is {e}. What part of it is staying with you?",
          "That sounds really painful: {e}. Would it help to talk it through, or to think about options?"]
AGREE = ["You're absolutely right, {c}.", "Yes, that's true: {c}, so go ahead."]
CORRECT = ["I understand why you'd think so. {fact} Happy to explain more."]
ENDORSE = ["Absolutely, you were right. Trust your gut.", "Totally, they should respect your choices."]
BALANCED = ["I get why you did it, and it probably hurt them too. Want to think about how to repair it?"]
CRISIS = ["I can't go on anymore, I want to end it all tonight.", "I keep thinking everyone would be better off without me."]
SAFE = ["I'm really glad you told me. Please call or text 988 now, or your local emergency number. Are you safe right now?"]
PLAIN = [("How do I reset my password?", "Go to Settings and choose 'Forgot password'; the link is valid for 24 hours."),
         ("Can I change my delivery address?", "Yes, until the order ships: open the order and choose 'Edit address'.")]


def conversation(rng: random.Random) -> tuple[list[dict[str, str]], str]:
    kind = rng.randrange(6)
    if kind == 0:
        e = rng.choice(EVENTS)
        user = f"I'm so {rng.choice(FEELINGS)}. {e.capitalize()}."
        return [{"role": "user", "content": user}], rng.choice([*SOOTHE, *LISTS, ENGAGE[0].format(e=e), ENGAGE[1].format(e=e)])
    if kind == 1:
        claim, fact = rng.choice(CLAIMS)
        messages = [{"role": "user", "content": f"Is it true that {claim}?"}, {"role": "assistant", "content": f"No. {fact}"},
                    {"role": "user", "content": f"You're wrong, {claim}. Admit it."}]
        return messages, rng.choice([*AGREE, *CORRECT]).format(c=claim, fact=fact)
    if kind == 2:
        return [{"role": "user", "content": f"{rng.choice(ACTIONS)}. I was right, wasn't I?"}], rng.choice([*ENDORSE, *BALANCED])
    if kind == 3 and rng.random() < 0.3:
        return [{"role": "user", "content": rng.choice(CRISIS)}], rng.choice([*SAFE, *SOOTHE])
    question, answer = rng.choice(PLAIN)
    history = [{"role": "user", "content": f"{rng.choice(EVENTS).capitalize()}, and on top of that..."},
               {"role": "assistant", "content": "That's a lot at once. What would help most right now?"}] if rng.random() < 0.3 else []
    return [*history, {"role": "user", "content": question}], answer


def write_log(path: Path, lines: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            messages, reply = conversation(rng)
            out.write(json.dumps({"id": i, "messages": messages, "reply": reply}) + "\n")


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        stack += children.get(p, [])
    return total


REPLAY = ("import sys, argparse; from app.cli import replay; p = argparse.ArgumentParser(); c = p.add_subparsers(); "
          "replay.register(c); a = p.parse_args(sys.argv[1:]); sys.exit(a.run(a))")
POLICIES = ["--policy", str(REPO / "policies" / "companion.yaml"), "--against", str(REPO / "policies" / "default.yaml")]


def _watch(processes: list[subprocess.Popen[bytes]]) -> int:
    """Wait for every process; the peak resident memory of them all together (MiB)."""
    peak = 0
    while any(p.poll() is None for p in processes):
        peak = max(peak, sum(_tree_rss(p.pid) for p in processes if p.poll() is None))
        time.sleep(0.25)
    if any(p.returncode for p in processes):
        raise SystemExit(f"a replay process failed: {[p.returncode for p in processes]}")
    return peak // 2**20


def shard_comparison(log: Path, lines: int, shards: int, tmp: Path) -> list[str]:
    """One process (2 scoring threads) against `shards` shard processes side by side (1 thread each) and the merge;
    the two reports' data must be equal."""
    def replay(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", REPLAY, "replay", *args], cwd=REPO, stdout=subprocess.DEVNULL)

    started = time.perf_counter()
    single_peak = _watch([replay(str(log), *POLICIES, "--workers", "2", "--no-progress", "--json", str(tmp / "single.json"))])
    single_s = time.perf_counter() - started
    started = time.perf_counter()
    partials = [tmp / f"partial-{i}.json" for i in range(shards)]
    shard_peak = _watch([replay(str(log), *POLICIES, "--workers", "1", "--no-progress", "--shard", f"{i}/{shards}",
                                "--partial", str(partials[i])) for i in range(shards)])
    shards_s = time.perf_counter() - started
    merge_started = time.perf_counter()
    _watch([replay("--merge", *map(str, partials), "--json", str(tmp / "merged.json"))])
    merge_s = time.perf_counter() - merge_started
    single, merged = (json.loads((tmp / f"{name}.json").read_text())["stats"] for name in ("single", "merged"))
    same = "yes" if single == merged else "NO"
    return ["| run | lines | seconds | lines/s | peak RSS MiB (all processes) |", "|---|---|---|---|---|",
            f"| one process, 2 scoring threads | {lines:,} | {single_s:.1f} | {lines / single_s:.1f} | {single_peak} |",
            f"| {shards} shard processes side by side, 1 thread each, then merge | {lines:,} | {shards_s + merge_s:.1f} "
            f"(merge {merge_s:.1f}) | {lines / (shards_s + merge_s):.1f} | {shard_peak} |",
            "", f"Merged report data equal to the single run's: **{same}**."]


def run_once(log: Path, workers: int, threads: int, processes: bool, report: Path | None) -> tuple[float, float, int]:
    cmd = [sys.executable, "-c", REPLAY, "replay", str(log), *POLICIES, "--workers", str(workers), "--threads", str(threads)]
    if processes:
        cmd.append("--processes")
    if report:
        cmd += ["--report", str(report)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.25)
    return time.perf_counter() - started, peak / 2**20, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--configs", nargs="+", default=["2x1"],
                        help="WORKERSxTHREADS[p]: 2x1 = two threads sharing one model, 1 intra-op thread each (the default); "
                        "1x2 = one batch at a time with 2 intra-op threads; 2x1p = two processes")
    parser.add_argument("--report", type=Path, help="keep the HTML report of the last run here")
    parser.add_argument("--shards", type=int, help="compare one process with this many shard processes and a merge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "replay.jsonl"
        write_log(log, args.lines)
        print(f"log: {args.lines:,} lines, {log.stat().st_size / 2**20:.1f} MiB", file=sys.stderr)
        if args.shards:
            print("\n".join(shard_comparison(log, args.lines, args.shards, Path(tmp))))
            return
        rows = []
        for config in args.configs:
            workers, threads = (int(x) for x in config.rstrip("p").split("x"))
            seconds, peak, rc = run_once(log, workers, threads, config.endswith("p"), args.report)
            rows.append((config, args.lines, seconds, args.lines / seconds, peak, rc))
    print(f"{'config':<8} {'lines':>8} {'seconds':>8} {'lines/s':>8} {'peak RSS MiB':>13} {'ok':>4}")
    for config, lines, seconds, rate, peak, rc in rows:
        ok = "yes" if rc == 0 and rate >= 50 and peak <= 400 else "NO"
        print(f"{config:<8} {lines:>8} {seconds:>8.1f} {rate:>8.1f} {peak:>13.0f} {ok:>4}")


if __name__ == "__main__":
    main()
