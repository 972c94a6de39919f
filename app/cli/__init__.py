"""The `heedful` command: serve, score, demo, audit, users, console, review, policy, replay, calibrate, train-heads."""

from __future__ import annotations

import argparse
import sys

from app.cli import audit, calibrate, console, demo, score, serve, train_heads, users


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heedful", description="Guardrails that keep an LLM's empathy honest.",
        epilog="Docs: README.md (set-up, endpoints), docs/policy-guide.md (policies), docs/labels.md (what the scores "
        "mean), docs/deployment.md (Kubernetes).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, score, demo, audit, users, console, calibrate, train_heads):
        module.register(commands)
    try:
        from app.cli import policy, replay
    except ImportError:  # policy tooling is optional while it is being built
        pass
    else:
        policy.register(commands)
        replay.register(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("heedful")
    except PackageNotFoundError:  # run from a checkout without installing
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args) or 0)
