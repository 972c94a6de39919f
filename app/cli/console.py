"""heedful console: the review console server, its tokens, and `heedful review export` of reviewed decisions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "console", help="run the review console (docs/review-console.md); `console token add` makes a sign-in token",
        description="Serve the review console: decisions from the audit stream (Redis, --redis-url) stored in a database "
        "(--db-url, SQLite by default), reviewed in the browser. Sign-in needs a token: `heedful console token add`.")
    parser.add_argument("--host", help="bind address [HEEDFUL_HOST, default 127.0.0.1]")
    parser.add_argument("--port", type=int, default=None, help="port (default 8081)")
    parser.add_argument("--db-url", dest="console_db_url", help="database URL [HEEDFUL_CONSOLE_DB_URL, default "
                        "sqlite:///heedful-console.db]; postgresql+psycopg://user@host/db for a shared one")
    parser.add_argument("--redis-url", help="the Redis the proxies write the audit stream to [HEEDFUL_REDIS_URL]")
    parser.add_argument("--tokens-file", dest="console_tokens_file", type=Path,
                        help="token file [HEEDFUL_CONSOLE_TOKENS_FILE]")
    parser.add_argument("--policies", type=Path, help="policy directory, for explanations and the playground")
    parser.add_argument("--model-path", type=Path, help="classifier model folder [HEEDFUL_MODEL_PATH]")
    parser.add_argument("--insecure-cookies", dest="console_secure_cookies", action="store_const", const=False,
                        help="send the session cookie over plain HTTP too (test rigs only)")
    parser.set_defaults(run=run_console)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    token = verbs.add_parser("token", help="manage sign-in tokens").add_subparsers(dest="token_verb", required=True,
                                                                                   metavar="ACTION")
    add = token.add_parser("add", help="create a token for a person (printed once; only its hash is stored)")
    add.add_argument("--file", type=Path, required=True, help="the token file (created if missing, mode 600)")
    add.add_argument("--name", required=True, help="who the token is for: reviews are attributed to this name")
    add.add_argument("--role", required=True, choices=("viewer", "reviewer", "admin"))
    add.set_defaults(run=run_token_add)

    review = commands.add_parser("review", help="reviewed decisions out of the console's database")
    review_verbs = review.add_subparsers(dest="verb", required=True, metavar="VERB")
    export = review_verbs.add_parser(
        "export", help="write reviewed decisions as labelled JSON lines (input for score, replay, calibrate)",
        description="One JSON line per reviewed decision: {id, messages, reply (where the policy kept texts), scores, "
        "context, flags, policy, policy_revision, rule, action, tenant, model, ts, labels, review}. docs/review-console.md.")
    export.add_argument("--db-url", required=False, help="the console's database [HEEDFUL_CONSOLE_DB_URL]")
    export.add_argument("--output", type=Path, help="JSONL file (default: standard output)")
    export.add_argument("--with-texts-only", action="store_true",
                        help="only decisions whose texts were kept (what `heedful score` and `replay` need)")
    export.set_defaults(run=run_export)


def run_console(args: argparse.Namespace) -> int:
    import uvicorn

    from app.config import load_settings
    from app.console.auth import TokenFileError
    from app.console.server import create_standalone
    from app.logs import configure

    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "run", "verb")}
    overrides["port"] = overrides.get("port") or 8081
    settings = load_settings(**overrides)
    configure(settings.log_level)
    try:
        app = create_standalone(settings)
    except TokenFileError as exc:
        print(f"heedful console: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a database that cannot be reached or migrated: say which, do not start
        print(f"heedful console: cannot open the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(f"heedful console: http://{settings.host}:{settings.port}/console/ (database "
          f"{_shown_url(settings.console_db_url)}, audit source "
          f"{'redis' if settings.redis_url else 'none: stored decisions only'})", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run_token_add(args: argparse.Namespace) -> int:
    from app.console.auth import TokenFileError, add_token

    try:
        token = add_token(args.file, args.name, args.role)
    except TokenFileError as exc:
        print(f"heedful console token add: {exc}", file=sys.stderr)
        return 2
    print(f"token for {args.name} ({args.role}), shown once; {args.file} keeps only its hash:", file=sys.stderr)
    print(token)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from app.config import load_settings
    from app.console.db import Database
    from app.console.export import write_export

    url = args.db_url or load_settings().console_db_url
    try:
        db = Database(url, run_migrations=False)  # a reader: never migrates the database it exports
    except Exception as exc:
        print(f"heedful review export: cannot open {_shown_url(url)}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        written = write_export(db, out, args.with_texts_only)
    finally:
        if args.output:
            out.close()
        db.dispose()
    print(f"heedful review export: {written} reviewed decision(s)", file=sys.stderr)
    return 0
