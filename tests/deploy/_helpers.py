"""Shared helpers for the deployment tests: tool lookup and cached renders of every manifest source."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "heedful"
OVERLAYS = ("sidecar", "gateway")
HELM_VALUES = ("default", *sorted(p.stem for p in (CHART / "ci").glob("*.yaml")))
INSTALL_HINT = "run deploy/install-tools.sh"

# The interface the proxy exposes (see docs/deployment.md); manifests are checked against it.
PORT = 8080
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
POLICY_DIR = "/etc/heedful/policies"
UID = 10001


def find_tool(name: str) -> str | None:
    """A tool on PATH or next to this interpreter's scripts (where deploy/install-tools.sh puts them)."""
    search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("HEEDFUL_TOOLS_BIN", ""), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    return proc


@functools.cache
def kustomize_renderers() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every available kustomize: the standalone binary and kubectl's built-in one when it is v4+."""
    found = []
    if kz := find_tool("kustomize"):
        found.append(("kustomize", (kz, "build")))
    if kc := find_tool("kubectl"):
        out = subprocess.run([kc, "version", "--client"], capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"Kustomize Version: v(\d+)", out)
        if m and int(m.group(1)) >= 4:
            found.append(("kubectl", (kc, "kustomize")))
    return tuple(found)


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@functools.cache
def render_overlay(overlay: str, renderer: str | None = None) -> tuple[dict, ...]:
    renderers = dict(kustomize_renderers())
    if not renderers:
        pytest.skip(f"no kustomize (standalone, or kubectl with kustomize >= v4) found; {INSTALL_HINT}")
    cmd = renderers[renderer] if renderer else next(iter(renderers.values()))
    return tuple(load_docs(run([*cmd, str(DEPLOY / "kustomize" / "overlays" / overlay)]).stdout))


@functools.cache
def render_helm(values: str, *extra: str) -> tuple[dict, ...]:
    helm = find_tool("helm")
    if not helm:
        pytest.skip(f"helm not found; {INSTALL_HINT}")
    cmd = [helm, "template", "rel", str(CHART), "--namespace", "guard", *extra]
    if values != "default":
        cmd += ["-f", str(CHART / "ci" / f"{values}.yaml")]
    return tuple(load_docs(run(cmd).stdout))


def all_renders() -> list[tuple[str, tuple[dict, ...]]]:
    out = [(f"kustomize/{o}", render_overlay(o)) for o in OVERLAYS]
    out += [(f"helm/{v}", render_helm(v)) for v in HELM_VALUES]
    return out


def pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        return obj["spec"]["template"]["spec"]
    return None


def heedful_containers(docs) -> list[tuple[dict, dict, dict]]:
    """(workload, pod spec, container) for every heedful container, sidecar or not."""
    found = []
    for obj in docs:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            if c["name"] == "heedful":
                found.append((obj, spec, c))
    return found
