"""What the serving process imports: nothing it never uses on the request path (start-up time and memory)."""

from __future__ import annotations

import subprocess
import sys

# torch and transformers are training-only; sqlalchemy and jinja2 belong to the console (its own extra, loaded when it is
# switched on); typer and prompt_toolkit are the `cel` package's interactive shell, rich and pygments httpx's.
NEVER_AT_START = ("torch", "transformers", "sqlalchemy", "jinja2", "typer", "prompt_toolkit", "sklearn", "rich", "pygments")


def test_the_proxy_and_its_cli_start_without_the_heavy_optional_packages() -> None:
    probe = ("import sys, app.cli, app.main; from app.policy.policy_set import load_policy_set; "
             "load_policy_set(__import__('pathlib').Path('policies')); "
             f"print(','.join(m for m in {NEVER_AT_START!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
