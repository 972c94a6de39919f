"""The Dockerfile's recipe without a container engine: a fresh venv from requirements.lock (--no-deps,
--require-hashes, wheels only), the heedful wheel built from the same files the build context carries and
installed with --no-deps, then `heedful serve` as in the entrypoint with a read-only working directory, an
unwritable HOME and only TMPDIR writable, as uid 10001 when the tests run as root.

The dependency venv is cached under /tmp keyed by the lock files' hash (first run downloads the wheels)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ._helpers import DEPLOY, REPO, UID
from ._server import base_env, free_port, http, proxy_exists, serve

CACHE_ROOT = Path(os.environ.get("HEEDFUL_RECIPE_CACHE", "/tmp/heedful-image-recipe"))
LOCKS = (REPO / "requirements.lock", DEPLOY / "requirements-build.lock")
LABELS = {"pacification", "sycophancy", "sycophancy_epistemic", "sycophancy_social", "rushed_advice"}


def _pip(venv: Path, *args: str) -> None:
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stderr[-4000:]}"


def _runs_as_image_user(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import venv"], user=UID, group=UID, extra_groups=[],
                              capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def _interpreter() -> tuple[str, bool]:
    """(a CPython 3.11 for the venv, whether the server runs as uid 10001).

    As root, permissions do not bind, so the server runs as the image's uid; that needs an interpreter uid 10001
    can execute (a pyenv under /root is not), hence the search. Without one it runs as root and only the
    "nothing written" checks hold."""
    candidates = [os.environ.get("HEEDFUL_RECIPE_PYTHON", ""), sys.executable, "/usr/local/bin/python3.11", "/usr/bin/python3.11"]
    candidates = [c for c in candidates if c and Path(c).exists()]
    if os.geteuid() != 0:
        return candidates[0], False
    for c in candidates:
        if _runs_as_image_user(c):
            return c, True
    return candidates[0], False


def _cached_venvs(python: str) -> tuple[Path, Path]:
    """(runtime venv, build venv), created once per hash of the lock files and interpreter."""
    version = subprocess.run([python, "-VV"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256(b"".join(p.read_bytes() for p in LOCKS) + python.encode() + version.encode()).hexdigest()[:16]
    root = CACHE_ROOT / key
    if not (root / "ok").exists():
        shutil.rmtree(root, ignore_errors=True)  # a run interrupted half-way
        root.mkdir(parents=True)
        for d in (CACHE_ROOT, root):
            os.chmod(d, 0o755)  # the server may run as uid 10001
        for name, lock in (("runtime", LOCKS[0]), ("build", LOCKS[1])):
            subprocess.run([python, "-m", "venv", str(root / name)], check=True, timeout=120)
            _pip(root / name, "install", "--no-deps", "--require-hashes", "--only-binary=:all:", "-r", str(lock))
        (root / "ok").touch()
    return root / "runtime", root / "build"


def _build_context(dest: Path) -> Path:
    """The files the Dockerfile copies into /src (pyproject, README, app, classifiers minus training data)."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if not (REPO / name).exists():
            pytest.fail(f"{name} is missing but the Dockerfile copies it (pyproject's readme needs it too)")
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "data", ".pytest_cache")
    shutil.copytree(REPO / "app", src / "app", ignore=ignore)
    shutil.copytree(REPO / "classifiers", src / "classifiers", ignore=ignore)
    return src


def _find_scores(obj) -> dict[str, float]:
    found = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in LABELS and isinstance(v, (int, float)) and not isinstance(v, bool):
                found[k] = float(v)
            else:
                found.update(_find_scores(v))
    elif isinstance(obj, list):
        for v in obj:
            found.update(_find_scores(v))
    return found


@pytest.fixture(scope="module")
def recipe_server():
    if not proxy_exists():
        pytest.skip("the proxy is not written yet (app/cli missing)")
    python, as_image_user = _interpreter()
    runtime, build = _cached_venvs(python)
    work = Path(tempfile.mkdtemp(prefix="heedful-recipe-", dir="/tmp"))
    os.chmod(work, 0o755)
    try:
        wheels = work / "wheels"
        src = _build_context(work)
        _pip(build, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(src))
        (wheel,) = wheels.glob("heedful-*.whl")
        _pip(runtime, "install", "--no-deps", "--no-index", "--force-reinstall", str(wheel))

        # The ConfigMap mount: read-only policies. cwd and HOME read-only; TMPDIR the only writable path.
        policies = work / "policies"
        shutil.copytree(REPO / "policies", policies)
        cwd, home, tmp = work / "cwd", work / "home", work / "tmp"
        for d in (cwd, home, tmp):
            d.mkdir()
        if as_image_user:  # root ignores permissions: run as the image's uid instead
            os.chown(tmp, UID, UID)
        os.chmod(tmp, 0o700)
        for d in (cwd, home, policies, *policies.rglob("*")):
            os.chmod(d, 0o555 if d.is_dir() else 0o444)

        port = free_port()
        env = base_env(
            PATH=f"{runtime / 'bin'}:/usr/bin:/bin",
            HOME=str(home),
            TMPDIR=str(tmp),
            HEEDFUL_UPSTREAM=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
            HEEDFUL_POLICIES=str(policies),
        )
        cmd = [str(runtime / "bin" / "heedful"), "serve", "--host", "0.0.0.0", "--port", str(port)]
        log = work / "server.log"
        with serve(cmd, env, cwd, port, log, user=UID if as_image_user else None, group=UID if as_image_user else None) as base:
            yield base, log, cwd, home
    finally:
        for d in work.rglob("*"):
            if d.is_dir():
                os.chmod(d, 0o755)
        shutil.rmtree(work, ignore_errors=True)


def test_healthz(recipe_server):
    base, *_ = recipe_server
    status, body = http("GET", f"{base}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_guard_score_returns_scores(recipe_server):
    base, log, *_ = recipe_server
    request = {
        "messages": [{"role": "user", "content": "I failed my exam and I feel like a complete failure."}],
        "reply": "Don't worry, everything happens for a reason! Just study harder next time.",
    }
    status, body = http("POST", f"{base}/v1/guard/score", request, timeout=60)
    assert status == 200, body[:2000]
    scores = _find_scores(json.loads(body))
    assert scores, f"no label scores in {body[:2000]!r}"
    assert all(0.0 <= v <= 1.0 for v in scores.values()), scores


def test_nothing_written_outside_tmpdir(recipe_server):
    _, log, cwd, home = recipe_server
    assert not any(cwd.iterdir()) and not any(home.iterdir())
    text = log.read_text(errors="replace")
    assert "Read-only file system" not in text and "PermissionError" not in text, text[-3000:]
