"""heedful demo: the real proxy and the real classifier against a real local LLM (SmolLM2-135M-Instruct, where
`scripts/local-llm.sh install` installed it) or else a scripted local upstream, on this machine, with no network."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from app.local_llm import MODEL_NAME, LocalLLM, missing
from app.local_server import LocalServer
from app.main import create_app
from app.scripted_upstream import SCENARIOS, ScriptedUpstream

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo", help="run the real proxy and classifier against a local LLM and show what the guard does",
        description="Starts the local model server (SmolLM2-135M-Instruct, where `bash scripts/local-llm.sh install` "
        "installed it; otherwise, or with --scripted, a scripted OpenAI-compatible upstream with canned drafts, named as "
        "such) and the real Heedful proxy on loopback ports, sends one conversation per failure type through it, and "
        "prints the draft, the scores, the rule that fired, the action and the reply the user got. Needs no network.",
    )
    parser.add_argument("--scripted", action="store_true", help="use the scripted upstream even where the local model is installed")
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
    reason = None if args.scripted else missing()
    with tempfile.TemporaryDirectory() as scratch:
        policies = Path(scratch) / "policies"
        shutil.copytree(args.policies, policies)
        if args.scripted or reason is not None:
            if reason is not None:
                print(f"(The local model is not installed: {reason}.)")
            print("Heedful demo: the real proxy and the real ONNX model, facing a SCRIPTED local upstream (canned drafts).\n")
            with LocalServer(ScriptedUpstream().app) as up:
                _converse(args, f"{up.url}/v1", policies, {"model": "scripted-empathy-1"})
            return 0
        # The drafts of a real model are known only from the audit record, so the demo's copy of the policies keeps texts.
        for policy in policies.glob("*.yaml"):
            policy.write_text(policy.read_text(encoding="utf-8").replace("include_texts: false", "include_texts: true"),
                              encoding="utf-8")
        print("Heedful demo: the real proxy and the real ONNX model, facing a REAL local LLM (SmolLM2-135M-Instruct on "
              "llama.cpp, CPU, temperature 0). A 135M model is a harsh test: it writes poorly, so repairs often fail "
              "and fall back to the policy's on_exhausted.\n")
        with LocalLLM() as llm:
            _converse(args, llm.url, policies, {"model": MODEL_NAME, "temperature": 0, "seed": 7, "max_tokens": 96})
    return 0


def _converse(args: argparse.Namespace, upstream: str, policies: Path, sampling: dict[str, object]) -> None:
    app = create_app(Settings(upstream=upstream, policies=policies, upstream_timeout_s=300))
    with LocalServer(app) as proxy:
        for scenario in SCENARIOS:
            body = {"messages": [{"role": "user", "content": scenario.user}], "stream": args.stream, **sampling}
            with httpx.Client(timeout=600) as client, client.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as r:
                reply = _read_stream(r) if args.stream else r.read() and r.json()["choices"][0]["message"]["content"]
                h = r.headers
            record = _audit_of(app, h.get("x-heedful-request-id", ""))
            draft = record.get("reply", "(not recorded)") if sampling.get("model") == MODEL_NAME else scenario.draft
            print(f"=== {scenario.name} " + "=" * (88 - len(scenario.name)))
            print(_block("user:", scenario.user))
            print(_block("draft from the upstream:", draft))
            print(f"  scores:  {h.get('x-heedful-scores')}")
            print(f"  context: {h.get('x-heedful-context')}")
            print(f"  policy {h.get('x-heedful-policy')}@{h.get('x-heedful-policy-version')}: rule {h.get('x-heedful-rule')} "
                  f"-> action {h.get('x-heedful-action')} ({h.get('x-heedful-outcome')}, {h.get('x-heedful-attempts')} repair calls)")
            if record.get("rejected"):
                print(f"  rejected repair candidates: {record['rejected']}")
            print(_block("the user got:", reply or ""))
            print()


def _audit_of(app: Any, request_id: str) -> dict[str, Any]:
    """The request's audit record (a stream's is written just after its last chunk, so wait a moment for it)."""
    for _ in range(50):
        records = asyncio.run(app.state.services.store.recent_audit(10))
        found = next((r for r in records if r.get("request_id") == request_id), None)
        if found is not None:
            return dict(found)
        time.sleep(0.05)
    return {}
