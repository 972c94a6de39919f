"""heedful audit export: the audit records out of the shared store, as JSON lines `heedful replay` and `policy explain`
read.

Records live in Redis (the stream heedful:audit, or heedful:review for escalations) when the proxy runs with
--redis-url; the in-process store of a proxy without Redis lives and dies with that process and cannot be exported.
Texts are in a record only where the policy keeps them (spec.audit.include_texts).
A record re-sent from the proxy's audit spool after a Redis outage can be in the stream twice; the export writes each
`record_id` once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

PAGE = 1000


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("audit", help="export audit records from Redis as JSON lines (docs/policy-guide.md)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    export = verbs.add_parser("export", help="write audit records as JSON lines, oldest first")
    export.add_argument("--redis-url", required=True, help="the Redis the proxy writes to [same as HEEDFUL_REDIS_URL]")
    export.add_argument("--output", type=Path, help="JSONL file (default: standard output)")
    export.add_argument("--stream", choices=("audit", "review"), default="audit",
                        help="all decisions, or only those escalated for review")
    export.add_argument("--last", type=int, help="only the newest N records")
    export.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    import redis

    from app.store import AUDIT_STREAM, REVIEW_STREAM

    stream = AUDIT_STREAM if args.stream == "audit" else REVIEW_STREAM
    try:
        client = redis.Redis.from_url(args.redis_url, socket_timeout=10)
        client.ping()
    except redis.RedisError as exc:
        print(f"heedful audit export: cannot reach Redis at {args.redis_url}: {exc}", file=sys.stderr)
        return 2
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    written = 0
    seen: set[str] = set()
    try:
        if args.last:
            newest: list[Any] = list(client.xrevrange(stream, count=args.last) or [])
            written = _write(out, list(reversed(newest)), seen)
        else:
            start = "-"
            while True:
                page: list[Any] = list(client.xrange(stream, min=start, count=PAGE) or [])
                if not page:
                    break
                written += _write(out, page, seen)
                start = "(" + bytes(page[-1][0]).decode()
    finally:
        if args.output:
            out.close()
    print(f"heedful audit export: {written} record(s) from {stream}", file=sys.stderr)
    return 0


def _write(out: IO[str], entries: list[Any], seen: set[str]) -> int:
    written = 0
    for _, fields in entries:
        record = json.loads(fields[b"record"])
        record_id = record.get("record_id")
        if record_id is not None:
            if record_id in seen:
                continue  # a copy left by an at-least-once re-send
            seen.add(record_id)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    return written
