"""heedful serve: run the proxy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.config import Settings, load_settings
from app.policy.errors import PolicyError
from app.policy.policy_set import PolicySet
from app.policy.watcher import PolicySnapshot, read_policies
from classifiers import ModelFilesError
from classifiers.artifacts import load_model_info


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="run the guard proxy (options also read from HEEDFUL_* variables)")
    parser.add_argument("--upstream", help="upstream base URL, e.g. https://api.openai.com/v1 [HEEDFUL_UPSTREAM]")
    parser.add_argument("--upstream-api-key", help="deprecated: visible to anyone who can list processes; use "
                        "--upstream-api-key-file or HEEDFUL_UPSTREAM_API_KEY")
    parser.add_argument("--upstream-api-key-file", type=Path, help="file holding the key sent upstream instead of the "
                        "client's [HEEDFUL_UPSTREAM_API_KEY_FILE; or the key itself in HEEDFUL_UPSTREAM_API_KEY]")
    parser.add_argument("--upstream-api-key-header", help="send the deployment key as `authorization` (Bearer, default) "
                        "or in a header such as x-api-key [HEEDFUL_UPSTREAM_API_KEY_HEADER]")
    parser.add_argument("--host", help="bind address [HEEDFUL_HOST, default 127.0.0.1]")
    parser.add_argument("--port", type=int, help="port [HEEDFUL_PORT, default 8080]")
    parser.add_argument("--policies", type=Path, help="policy directory, hot-reloaded [HEEDFUL_POLICIES, default policies/]")
    parser.add_argument("--redis-url", help="Redis for shared state; in-process store without it [HEEDFUL_REDIS_URL]")
    parser.add_argument("--model-path", type=Path, help="classifier model folder [HEEDFUL_MODEL_PATH]")
    parser.add_argument("--upstream-timeout-s", type=float, help="total deadline of one upstream call, request to last "
                        "byte (each repair call has its own) [HEEDFUL_UPSTREAM_TIMEOUT_S, default 120]")
    parser.add_argument("--upstream-max-response-bytes", type=int, help="cap on one upstream reply; past it the client "
                        "gets a 502 [HEEDFUL_UPSTREAM_MAX_RESPONSE_BYTES, default 8 MiB]")
    parser.add_argument("--max-body-bytes", type=int, help="request body limit [HEEDFUL_MAX_BODY_BYTES]")
    parser.add_argument("--log-level", help="debug, info, warning, error [HEEDFUL_LOG_LEVEL]")
    parser.add_argument("--no-guard", dest="guard_enabled", action="store_const", const=False,
                        help="pass everything through unguarded [HEEDFUL_GUARD_ENABLED=false]")
    parser.add_argument("--no-stream-upstream", dest="stream_upstream", action="store_const", const=False,
                        help="ask the upstream for JSON on JSON requests instead of reading its stream while it writes "
                        "[HEEDFUL_STREAM_UPSTREAM=false]")
    parser.set_defaults(run=run)


class StartupRefused(Exception):
    """The policies or the model are broken: the message says what, before the port is bound."""


def checked_startup(settings: Settings) -> PolicySnapshot:
    """The policy set, read and checked once (the server starts on this very read), and the model files checked."""
    try:
        policies = read_policies(settings.policies)
        load_model_info(settings.model_path)
    except PolicyError as exc:
        raise StartupRefused(f"refusing to start: the policies in {settings.policies} have errors:\n{exc}") from exc
    except ModelFilesError as exc:
        raise StartupRefused(f"refusing to start: {exc}") from exc
    return policies


def check_startup(settings: Settings) -> str | None:
    """Why the server would refuse to start, or None."""
    try:
        checked_startup(settings)
    except StartupRefused as exc:
        return str(exc)
    return None


def startup_summary(settings: Settings, policies: PolicySet) -> str:
    """What a person starting the proxy needs to see: where it listens, what it guards with, and where it sends."""
    from urllib.parse import urlsplit

    model = load_model_info(settings.model_path)
    upstream = urlsplit(settings.upstream)
    upstream_shown = f"{upstream.scheme}://{upstream.hostname}{f':{upstream.port}' if upstream.port else ''}{upstream.path}"
    store = (f"redis (audit spool while it is away: {settings.audit_spool_dir})" if settings.redis_url
             else "in-process (no Redis configured)")
    lines = [f"heedful: listening on http://{settings.host}:{settings.port}/v1 (OpenAI-compatible)",
             f"heedful: upstream {upstream_shown}" + (" (deployment key replaces client keys)" if settings.upstream_api_key else ""),
             f"heedful: model {model.name} v{model.version} ({settings.model_path})",
             "heedful: policies " + ", ".join(f"{p.name} v{p.version} ({p.revision})" for p in policies.policies)
             + f" from {settings.policies}",
             f"heedful: store {store}; guard {'on' if settings.guard_enabled else 'OFF (pass-through)'}"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from app.logs import configure
    from app.main import create_app
    from app.memory import cap_malloc_arenas

    from pydantic import ValidationError

    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "run")}
    if args.upstream_api_key:
        print("heedful: warning: --upstream-api-key is deprecated: any user who can list processes sees the key. "
              "Use --upstream-api-key-file or HEEDFUL_UPSTREAM_API_KEY.", file=sys.stderr)
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"refusing to start: {problems}", file=sys.stderr)
        return 2
    try:
        policies = checked_startup(settings)
    except StartupRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    configure(settings.log_level)
    cap_malloc_arenas()
    print(startup_summary(settings, policies.policies), file=sys.stderr)
    uvicorn.run(create_app(settings, policies), host=settings.host, port=settings.port, log_config=None, access_log=False,
                loop="uvloop", http="httptools", timeout_graceful_shutdown=5)
    return 0
