"""heedful users forget|show: erase, or show, what user memory holds for one user of one tenant (docs/user-memory.md).

Memory lives in Redis when the proxy runs with a Redis URL: this command reads the same HEEDFUL_REDIS_URL and
HEEDFUL_USER_MEMORY_SECRET (the secret turns the user id into the stored key). A proxy without Redis keeps memory in
its own process: pass --server to ask that proxy (DELETE /v1/guard/users/{id}) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("users", help="forget or show what user memory holds for a user (docs/user-memory.md)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, helptext in (("forget", "erase everything remembered about the user"),
                           ("show", "print the derived signals remembered about the user (there is no text)")):
        sub = verbs.add_parser(verb, help=helptext)
        sub.add_argument("user_id", help="the app's id for the user (the `user` field or the user header)")
        sub.add_argument("--tenant", default="default", help="the tenant the user belongs to (default: default)")
        sub.add_argument("--redis-url", default=os.environ.get("HEEDFUL_REDIS_URL"),
                         help="the Redis the proxy uses [HEEDFUL_REDIS_URL]")
        if verb == "forget":
            sub.add_argument("--server", help="ask a running proxy instead (needed when it keeps memory in process), "
                             "e.g. http://127.0.0.1:8080")
            sub.add_argument("--api-key", default=None, help="with --server: the API key that maps to the tenant")
        sub.set_defaults(run=run_forget if verb == "forget" else run_show)


def _memory(args: argparse.Namespace) -> Any:
    from app.config import load_settings
    from app.metrics import Metrics
    from app.users.memory import build_user_memory

    settings = load_settings(redis_url=args.redis_url)
    if settings.user_memory_secret is None:
        raise SystemExit("heedful users: HEEDFUL_USER_MEMORY_SECRET is not set, so no stored key can be found "
                         "(set the proxy's secret)")
    return build_user_memory(settings, Metrics())


def run_forget(args: argparse.Namespace) -> int:
    if args.server:
        return _forget_via_server(args)
    if not args.redis_url:
        print("heedful users forget: give --redis-url (or HEEDFUL_REDIS_URL), or --server for a proxy without Redis",
              file=sys.stderr)
        return 2
    import asyncio

    from app.users.store import UserStoreUnavailable

    async def forget() -> bool:
        memory = _memory(args)
        try:
            return bool(await memory.forget(args.tenant, args.user_id))
        finally:
            await memory.store.aclose()

    try:
        existed = asyncio.run(forget())
    except UserStoreUnavailable as exc:
        print(f"heedful users forget: cannot reach Redis, nothing was forgotten: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"user": args.user_id, "tenant": args.tenant, "forgotten": existed}))
    return 0


def _forget_via_server(args: argparse.Namespace) -> int:
    import urllib.parse

    import httpx

    from app.config import load_settings

    # The server reads the tenant from its configured header, which this process's settings name too.
    headers = {load_settings().tenant_header: args.tenant}
    if args.api_key:
        headers["authorization"] = f"Bearer {args.api_key}"
    url = f"{args.server.rstrip('/')}/v1/guard/users/{urllib.parse.quote(args.user_id, safe='')}"
    try:
        response = httpx.delete(url, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        print(f"heedful users forget: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    print(response.text)
    return 0 if response.status_code == 200 else 1


def run_show(args: argparse.Namespace) -> int:
    if not args.redis_url:
        print("heedful users show: give --redis-url (or HEEDFUL_REDIS_URL)", file=sys.stderr)
        return 2
    import asyncio
    import time

    async def show() -> dict[str, Any]:
        memory = _memory(args)
        try:
            profile = await memory.profile(args.tenant, args.user_id)
        finally:
            await memory.store.aclose()
        now = time.time()
        return {"user": args.user_id, "tenant": args.tenant,
                "stated_seconds_ago": {name: round(now - at) for name, at in profile.stated.items()}, "field": profile.work,
                "distress": [{"seconds_ago": round(now - p.at), "distress": p.distress} for p in profile.distress],
                "signals": profile.view(now, memory.settings.user_memory_retention_s).variables(None)}

    print(json.dumps(asyncio.run(show()), indent=2))
    return 0
