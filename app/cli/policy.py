"""heedful policy: check, test, schema, explain and diff policy files without live traffic."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.policy.errors import PolicyError

DEFAULT_DIR = Path("policies")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "policy", help="check, test, explain and diff policy files (docs/policy-guide.md)",
        description="Tools for the people who own policies. None of them call an LLM; `test` and `explain` run the real "
        "classifiers locally.",
    )
    sub = parser.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")

    check = sub.add_parser(
        "check", help="validate policy files without traffic",
        description="Validate a policy file or a directory of them (with their *_test.yaml suites) and print every problem "
        "as `file:line: code: field: message`, sorted: unknown keys, bad values and actions, CEL conditions that do not "
        "compile or name unknown variables, thresholds outside [0, 1], rules that can never fire because an earlier rule "
        "always matches first, and conflicts in a set (two defaults, duplicate names). Exit 1 if there is any problem.",
    )
    check.add_argument("path", nargs="?", type=Path, default=DEFAULT_DIR, help="policy file or directory (default: policies/)")
    check.set_defaults(run=run_check)

    test = sub.add_parser(
        "test", help="run policy test cases against the real classifiers",
        description="Run every test case of the policies under PATH: inline `tests:` and the cases in <name>_test.yaml beside "
        "each policy. Each case is a conversation and a draft reply, scored by the real model, and what must happen (the "
        "rule that fires, the action, or `rule: none`). Prints ID POLICY RULE CASE RESULT REASON, then each failure with "
        "its scores and why the rule that fired did. Exit 1 if any case fails, 2 if a file cannot be loaded.",
    )
    test.add_argument("path", nargs="?", type=Path, default=DEFAULT_DIR, help="policy file, *_test.yaml or directory (default: policies/)")
    _model_args(test)
    test.set_defaults(run=run_test)

    schema = sub.add_parser(
        "schema", help="print the JSON Schema of the policy format",
        description="Write the JSON Schema of the policy format to standard output (the committed copy is "
        "policies/policy.schema.json). Editors with yaml-language-server use it when a policy starts with "
        "`# yaml-language-server: $schema=./policy.schema.json`.",
    )
    schema.set_defaults(run=run_schema)

    explain = sub.add_parser(
        "explain", help="show how a policy decides on one conversation and draft",
        description="Score one conversation and draft reply, then show each rule's condition with the values filled in "
        "(e.g. `reply.pacification (0.91) >= 0.5 -> true`), which rule fires, and what its action would produce: the fixed "
        "text for append/prepend/replace or the corrective instruction for regenerate/rewrite. Nothing is sent to an LLM.",
    )
    explain.add_argument("--policy", type=Path, required=True, help="the policy file")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--messages", help='the conversation as JSON: [{"role": "user", "content": "..."}] (or a plain user message)')
    source.add_argument("--input", type=Path, help="a JSONL file of {messages, reply} lines (batch scoring input or audit records)")
    explain.add_argument("--line", type=int, default=1, help="which line of --input (1-based, default 1)")
    explain.add_argument("--reply", help="the draft reply (required with --messages; overrides the line's reply with --input)")
    explain.add_argument("--tenant", help="request tenant (default: the policy's first tenant)")
    explain.add_argument("--request-model", help="request model name (default: one the policy matches)")
    _model_args(explain)
    explain.set_defaults(run=run_explain)

    diff = sub.add_parser(
        "diff", help="what changed in meaning between two policy files",
        description="Compare two versions of a policy by meaning, not text: rules added, removed or reordered, thresholds "
        "moved (and whether the rule will act more or less often), actions, texts and instructions changed, limits, mode "
        "and matching. Exit 0 if they mean the same, 1 if they differ.",
    )
    diff.add_argument("old", type=Path, help="the current policy file")
    diff.add_argument("new", type=Path, help="the proposed policy file")
    diff.set_defaults(run=run_diff)


def _model_args(parser: argparse.ArgumentParser) -> None:
    from classifiers import DEFAULT_MODEL_DIR

    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="classifier model folder")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")


def _problems(problems: list[Any], out: Any = None) -> None:
    for problem in problems:
        print(problem, file=out or sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    from app.policy_tools.check import check_path

    problems = check_path(args.path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.path}: ok", file=sys.stderr)
    return 0


def run_test(args: argparse.Namespace, scorer: Any = None) -> int:
    from app.policy_tools.runner import report, run_suites
    from app.policy_tools.suite import collect_suites
    from classifiers import Scorer

    suites, problems = collect_suites(args.path)
    if problems:
        _problems(problems)
        print(f"heedful policy test: {len(problems)} problem(s) loading {args.path}; no case was run", file=sys.stderr)
        return 2
    results = run_suites(suites, scorer or Scorer(args.model, threads=args.threads))
    print(report(results, suites))
    return 0 if all(r.passed for r in results) else 1


def run_schema(args: argparse.Namespace) -> int:
    from app.policy_tools.schema import policy_schema_text

    sys.stdout.write(policy_schema_text())
    return 0


def _conversation(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str, str]:
    """(messages, reply, error)."""
    if args.messages is not None:
        try:
            messages = json.loads(args.messages)
        except json.JSONDecodeError:
            messages = args.messages  # a plain user message
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if args.reply is None:
            return [], "", "--reply is required with --messages"
        return messages, args.reply, ""
    try:
        with args.input.open(encoding="utf-8") as stream:
            text = next((t for n, t in enumerate(stream, start=1) if n == args.line), None)
    except OSError as exc:
        return [], "", f"cannot read {args.input}: {exc}"
    if text is None:
        return [], "", f"{args.input} has no line {args.line}"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], "", f"{args.input}:{args.line}: not valid JSON ({exc.msg})"
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        return [], "", f"{args.input}:{args.line}: no 'messages' (audit records need the policy's audit.include_texts)"
    reply = args.reply if args.reply is not None else row.get("reply")
    if not isinstance(reply, str):
        return [], "", f"{args.input}:{args.line}: no 'reply'; pass --reply"
    return row["messages"], reply, ""


def run_explain(args: argparse.Namespace, scorer: Any = None) -> int:
    from app.policy.loader import load_policy_file
    from app.policy_tools.explain import explain
    from classifiers import ConversationError, Scorer
    from classifiers.inputs import view_of

    try:
        policy = load_policy_file(args.policy)
    except PolicyError as exc:
        _problems(exc.problems)
        return 2
    messages, reply, error = _conversation(args)
    if not error:
        try:
            view_of(messages)
        except ConversationError as exc:
            error = f"messages: {exc}"
    if error:
        print(f"heedful policy explain: {error}", file=sys.stderr)
        return 2
    print(explain(policy, scorer or Scorer(args.model, threads=args.threads), messages, reply, args.request_model, args.tenant))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    from app.policy.loader import load_policy_file
    from app.policy_tools.diff import diff

    problems = []
    loaded = []
    for path in (args.old, args.new):
        try:
            loaded.append(load_policy_file(path))
        except PolicyError as exc:
            problems += exc.problems
    if problems:
        _problems(problems)
        return 2
    changes = diff(*loaded)
    if not changes:
        print(f"{args.old} and {args.new} mean the same (only comments or layout differ, if anything)")
        return 0
    for change in changes:
        print(change)
    return 1
