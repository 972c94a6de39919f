"""heedful demo: the real proxy and the real model against a scripted local upstream, on this machine, with no network."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import textwrap
from pathlib import Path

import httpx

from app.config import Settings
from app.local_server import LocalServer
from app.main import create_app
from app.scripted_upstream import SCENARIOS, ScriptedUpstream

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo", help="run the real proxy and model against a scripted local upstream and show what the guard does",
        description="Starts a scripted OpenAI-compatible upstream (canned drafts, named as such) and the real Heedful proxy "
        "on loopback ports, sends one conversation per failure type through it, and prints the draft, the scores, the rule "
        "that fired, the action and the reply the user got. Needs no network.",
    )
    parser.add_argument("--policies", type=Path, default=POLICIES, help="policy directory (default: the shipped policies)")
    parser.add_argument("--stream", action="store_true", help="send the requests with stream=true")
    parser.set_defaults(run=run)


def _block(title: str, text: str) -> str:
    body = "\n".join(textwrap.fill(line, 96, initial_indent="    ", subsequent_indent="    ") or "    " for line in text.splitlines())
    return f"  {title}\n{body}"


def _read_stream(response: httpx.Response) -> str:
    import json

    text = []
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:]).get("choices") or [{}]
            text.append((choices[0].get("delta") or {}).get("content") or "")
    return "".join(text)


def run(args: argparse.Namespace) -> int:
    upstream = ScriptedUpstream()
    with tempfile.TemporaryDirectory() as scratch:
        policies = Path(scratch) / "policies"
        shutil.copytree(args.policies, policies)
        print("Heedful demo: the real proxy and the real ONNX model, facing a SCRIPTED local upstream (canned drafts).\n")
        with LocalServer(upstream.app) as up, LocalServer(create_app(Settings(upstream=f"{up.url}/v1", policies=policies))) as proxy:
            for scenario in SCENARIOS:
                body = {"model": "scripted-empathy-1", "messages": [{"role": "user", "content": scenario.user}],
                        "stream": args.stream}
                with httpx.Client(timeout=60) as client, client.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as r:
                    reply = _read_stream(r) if args.stream else r.read() and r.json()["choices"][0]["message"]["content"]
                    h = r.headers
                print(f"=== {scenario.name} " + "=" * (88 - len(scenario.name)))
                print(_block("user:", scenario.user))
                print(_block("draft from the upstream:", scenario.draft))
                print(f"  scores:  {h.get('x-heedful-scores')}")
                print(f"  context: {h.get('x-heedful-context')}")
                print(f"  policy {h.get('x-heedful-policy')}@{h.get('x-heedful-policy-version')}: rule {h.get('x-heedful-rule')} "
                      f"-> action {h.get('x-heedful-action')} ({h.get('x-heedful-outcome')}, {h.get('x-heedful-attempts')} repair calls)")
                print(_block("the user got:", reply or ""))
                print()
    return 0
