"""heedful replay: run a policy over recorded conversations before rolling it out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.policy.errors import PolicyError


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
    parser.add_argument("log", type=Path, help="JSONL log ('-' for standard input)")
    parser.add_argument("--policy", type=Path, required=True, help="the policy file to replay")
    parser.add_argument("--against", type=Path, help="a second policy file (e.g. the one in production) to compare with")
    parser.add_argument("--report", type=Path, help="write a self-contained HTML report here (opens without network access)")
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
    from app.policy_tools.replay.html import render
    from app.policy_tools.replay.run import replay

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
                   progress=not args.no_progress)
    print(stats.summary())
    if args.report:
        args.report.write_text(render(stats, policies, str(args.log)), encoding="utf-8")
        print(f"report: {args.report}", file=sys.stderr)
    return 0
