"""Metric names in the Grafana dashboard and the alert rules: they must be ones the proxy exports.

Statically against the interface list, and live against `heedful serve`'s /metrics (skipped until app/cli.py exists)."""

from __future__ import annotations

import json
import re
import sys

import pytest
import yaml

from ._helpers import DEPLOY, REPO
from ._server import base_env, free_port, http, proxy_exists, serve

# name -> type, as the proxy documents them
INTERFACE = {
    "heedful_requests_total": "counter",
    "heedful_score": "histogram",
    "heedful_scoring_seconds": "histogram",
    "heedful_upstream_seconds": "histogram",
    "heedful_added_latency_seconds": "histogram",
    "heedful_regenerations_total": "counter",
    "heedful_guard_failures_total": "counter",
    "heedful_policy_reloads_total": "counter",
    "heedful_in_flight_requests": "gauge",
    "heedful_redis_up": "gauge",
    "heedful_policy_latency_budget_seconds": "gauge",
    "heedful_audit_spool_records": "gauge",
    "heedful_audit_spool_bytes": "gauge",
    "heedful_audit_spooled_total": "counter",
    "heedful_audit_resent_total": "counter",
    "heedful_audit_dropped_total": "counter",
    "heedful_budget_fallback_decisions_total": "counter",
}
REQUIRED_ALERTS = {"HeedfulGuardFailureRateHigh", "HeedfulAddedLatencyOverBudget", "HeedfulPolicyReloadFailed", "HeedfulRedisUnavailable",
                   "HeedfulAuditRecordsDropped"}
METRIC = re.compile(r"\bheedful_[a-z0-9_]+\b")


def _sample_names(families: dict[str, str]) -> set[str]:
    """Names a PromQL expression may use for these families (histograms expose _bucket/_sum/_count)."""
    names = set()
    for name, kind in families.items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        if kind == "counter":
            names |= {name if name.endswith("_total") else f"{name}_total"}
    return names


def _expressions() -> dict[str, list[str]]:
    exprs: dict[str, list[str]] = {}
    dash = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                exprs.setdefault(f"dashboard:{p['title']}", []).append(t["expr"])
            walk(p.get("panels", []))

    walk(dash["panels"])
    for var in dash["templating"]["list"]:
        if isinstance(var.get("query"), dict):
            exprs.setdefault(f"dashboard-var:{var['name']}", []).append(var["query"]["query"])
    for path in [DEPLOY / "monitoring" / "prometheusrule.yaml", *(DEPLOY / "kustomize").rglob("prometheusrule*.yaml")]:
        for doc in yaml.safe_load_all(path.read_text()):
            for group in doc["spec"]["groups"]:
                for rule in group["rules"]:
                    exprs.setdefault(f"alert:{rule['alert']}", []).append(rule["expr"])
    helm_rules = (DEPLOY / "helm" / "heedful" / "templates" / "prometheusrule.yaml").read_text()
    exprs["helm:prometheusrule"] = [helm_rules]
    return exprs


def _used_names() -> dict[str, set[str]]:
    return {where: {n for e in es for n in METRIC.findall(e)} for where, es in _expressions().items()}


def test_required_alerts_exist():
    alerts = {w.split(":", 1)[1] for w in _expressions() if w.startswith("alert:")}
    assert REQUIRED_ALERTS <= alerts


def test_names_are_from_the_interface():
    allowed = _sample_names(INTERFACE)
    bad = {where: names - allowed for where, names in _used_names().items() if names - allowed}
    assert not bad, f"metric names not exported by the proxy: {bad}"


def test_dashboard_covers_every_metric():
    used = set().union(*(n for w, n in _used_names().items() if w.startswith("dashboard")))
    missing = [m for m, kind in INTERFACE.items() if not _sample_names({m: kind}) & used]
    assert not missing, f"dashboard has no panel for {missing}"


def _parse_exposition(text: str) -> dict[str, str]:
    families = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
        elif line and not line.startswith("#"):
            families.setdefault(re.match(r"[^{\s]+", line).group(0), "untyped")
    return families


@pytest.fixture(scope="module")
def live_metrics(tmp_path_factory) -> dict[str, str]:
    if not proxy_exists():
        pytest.skip("the proxy is not written yet (app/cli missing)")
    tmp = tmp_path_factory.mktemp("metrics")
    port = free_port()
    policies = REPO / "policies" if (REPO / "policies").is_dir() else DEPLOY / "kustomize" / "base" / "policies"
    env = base_env(
        PYTHONPATH=str(REPO),
        HOME=str(tmp),
        TMPDIR=str(tmp),
        HEEDFUL_UPSTREAM=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        HEEDFUL_POLICIES=str(policies),
    )
    cmd = [sys.executable, "-c", "import sys; from app.cli import main; sys.argv[0] = 'heedful'; sys.exit(main())",
           "serve", "--host", "127.0.0.1", "--port", str(port)]
    with serve(cmd, env, REPO, port, tmp / "server.log") as base:
        status, body = http("GET", f"{base}/metrics")
        assert status == 200
        return _parse_exposition(body.decode())


def test_interface_metrics_are_exported(live_metrics):
    exported = _sample_names(live_metrics)
    missing = [m for m in INTERFACE if m not in exported]
    assert not missing, f"/metrics lacks {missing}"


def test_dashboard_and_alert_names_exist_on_live_metrics(live_metrics):
    exported = _sample_names(live_metrics)
    bad = {where: names - exported for where, names in _used_names().items() if names - exported}
    assert not bad, f"not in the live /metrics: {bad}"
