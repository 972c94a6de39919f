"""heedful replay: run a policy over recorded conversations before rolling it out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.policy.errors import PolicyError

if TYPE_CHECKING:
    from app.policy.loader import LoadedPolicy
    from app.policy_tools.replay.stats import ReplayStats


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from classifiers import DEFAULT_MODEL_DIR

    parser = commands.add_parser(
        "replay", help="run a policy over a log of recorded conversations (no LLM is called)",
        description="Score every conversation and draft in LOG (JSONL: the batch-scoring input {id, messages, reply}, or the "
        "proxy's audit records written with spec.audit.include_texts, which carry messages and reply) and report how often "
        "each rule of the policy fires, the actions it would take and the score distributions. With --against, both "
        "policies decide on the same scores and the conversations whose outcome changes are listed with examples. "
        "Memory stays bounded whatever the log's size; progress and an ETA go to standard error.",
    )
    parser.add_argument("log", type=Path, nargs="?", help="JSONL log ('-' for standard input)")
    parser.add_argument("--policy", type=Path, help="the policy file to replay (required unless --merge)")
    parser.add_argument("--against", type=Path, help="a second policy file (e.g. the one in production) to compare with")
    parser.add_argument("--report", type=Path, help="write a self-contained HTML report here (opens without network access)")
    parser.add_argument("--json", type=Path, help="write the report's data as JSON here (counts, histograms, examples)")
    parser.add_argument("--shard", metavar="I/N",
                        help="replay only shard I of N (I from 0: lines whose number minus one leaves I when divided by N) "
                        "and write a partial result to --partial; merge the N partials with --merge")
    parser.add_argument("--partial", type=Path, help="with --shard: where to write this shard's partial result (JSON)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="PARTIAL",
                        help="merge the partial results of all shards of one replay into one summary and report "
                        "(the same as one process replaying the whole log); takes no LOG or --policy")
    parser.add_argument("--wait-s", type=float, default=0.0, metavar="SECONDS",
                        help="with --merge: wait up to this long for every partial to appear (shards still running, "
                        "e.g. a merge Job beside a Kubernetes Indexed Job)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="classifier model folder")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="batches scored at once (default: one per core, up to 2); threads sharing one model unless --processes")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per worker (default 1)")
    parser.add_argument("--processes", action="store_true",
                        help="one process per worker, each with its own copy of the model (more memory; not faster on 2 cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.policy.loader import load_policy_file
    from app.policy_tools.replay.run import replay
    from app.policy_tools.replay.shards import ShardError, parse_shard, write_partial

    if args.merge:
        return _merge(args)
    if args.log is None or args.policy is None:
        print("heedful replay: LOG and --policy are required (or --merge PARTIAL...)", file=sys.stderr)
        return 2
    try:
        shard = parse_shard(args.shard) if args.shard else None
    except ShardError as exc:
        print(f"heedful replay: {exc}", file=sys.stderr)
        return 2
    if (shard is None) != (args.partial is None):
        print("heedful replay: --shard and --partial go together", file=sys.stderr)
        return 2

    problems = []
    policies = []
    for path in [args.policy, *([args.against] if args.against else [])]:
        try:
            policies.append(load_policy_file(path))
        except PolicyError as exc:
            problems += exc.problems
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    if str(args.log) != "-" and not args.log.is_file():
        print(f"heedful replay: no such file: {args.log}", file=sys.stderr)
        return 2
    stats = replay(policies, args.log, args.model, workers=args.workers, threads=args.threads, processes=args.processes,
                   progress=not args.no_progress, shard=shard)
    if shard is not None:
        from classifiers.artifacts import load_model_info

        info = load_model_info(args.model)
        sources = [(Path(p.file).read_text(encoding="utf-8"), p.file) for p in policies]
        write_partial(args.partial, stats, shard, str(args.log), sources, f"{info.name}:{info.version}")
        print(f"shard {shard}: {stats.lines} lines, {stats.replayed} replayed; partial result: {args.partial}", file=sys.stderr)
        return 0
    _write_reports(args, stats, policies, str(args.log))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from app.policy_tools.replay.shards import ShardError, merge_partials

    if args.log is not None or args.policy or args.against or args.shard:
        print("heedful replay --merge: takes only partial results (the log and policies are recorded in them)", file=sys.stderr)
        return 2
    missing = _wait_for(args.merge, args.wait_s)
    if missing:
        print(f"heedful replay --merge: no partial result at {', '.join(map(str, missing))}"
              + (f" after waiting {args.wait_s:g} s" if args.wait_s else ""), file=sys.stderr)
        return 2
    try:
        stats, policies, log = merge_partials(args.merge)
    except ShardError as exc:
        print(f"heedful replay --merge: {exc}", file=sys.stderr)
        return 2
    _write_reports(args, stats, policies, log)
    return 0


def _wait_for(paths: list[Path], seconds: float) -> list[Path]:
    """The paths still missing after waiting up to `seconds` (a shard writes its partial whole, by rename)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        missing = [path for path in paths if not path.exists()]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))


def _write_reports(args: argparse.Namespace, stats: ReplayStats, policies: list[LoadedPolicy], log: str) -> None:
    import json

    from app.policy_tools.replay.html import render
    from app.policy_tools.replay.shards import report_data

    print(stats.summary())
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(render(stats, policies, log), encoding="utf-8")
        print(f"report: {args.report}", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report_data(stats, policies, log), indent=1) + "\n", encoding="utf-8")
        print(f"report data: {args.json}", file=sys.stderr)
