"""The policies shipped with the manifests load in the proxy, and match the repository's defaults."""

from __future__ import annotations

import sys

import pytest

from ._helpers import CHART, DEPLOY, REPO

SHIPPED = {
    "kustomize": DEPLOY / "kustomize" / "base" / "policies",
    "helm": CHART / "files" / "policies",
}


def _files(d):
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.suffix in (".yaml", ".yml")}


def test_kustomize_and_helm_ship_the_same_policies():
    assert _files(SHIPPED["kustomize"]) == _files(SHIPPED["helm"]), "run deploy/sync-policies.sh"
    listed = (DEPLOY / "kustomize" / "base" / "kustomization.yaml").read_text()
    for name in _files(SHIPPED["kustomize"]):
        assert f"policies/{name}" in listed, f"{name} not in the base configMapGenerator (run deploy/sync-policies.sh)"


def test_shipped_policies_match_the_repository_defaults():
    repo = REPO / "policies"
    if not repo.is_dir():
        pytest.skip("no policies/ directory in the repository yet")
    wanted = {n: t for n, t in _files(repo).items() if not n.startswith(".") and not n.rsplit(".", 1)[0].endswith("_test")}
    assert _files(SHIPPED["kustomize"]) == wanted, "policies/ changed: run deploy/sync-policies.sh"


@pytest.mark.parametrize("where", sorted(SHIPPED))
def test_shipped_policies_parse(where):
    if not (REPO / "app" / "policy" / "loader.py").is_file():
        pytest.skip("the policy loader (app/policy/loader.py) does not exist yet")
    sys.path.insert(0, str(REPO))
    try:
        from app.policy.loader import parse_policy
    finally:
        sys.path.remove(str(REPO))
    for name, text in _files(SHIPPED[where]).items():
        parse_policy(text, name)  # raises PolicyError listing every problem
