"""Render every Kustomize overlay and the Helm chart (default + ci/ example values), validate each object offline,
and check the manifests against the proxy's interface: port 8080, /healthz, /readyz, /metrics, /tmp, uid 10001."""

from __future__ import annotations

import json
import re
import warnings

import pytest
import yaml

from ._helpers import (
    CHART,
    DEPLOY,
    HEALTH_PATH,
    HELM_VALUES,
    METRICS_PATH,
    OVERLAYS,
    POLICY_DIR,
    PORT,
    READY_PATH,
    UID,
    all_renders,
    find_tool,
    heedful_containers,
    kustomize_renderers,
    pod_spec,
    render_helm,
    render_overlay,
    run,
)

K8S_VERSION = "1.30.0"  # oldest Kubernetes the manifests target
CRD_KINDS = {("monitoring.coreos.com/v1", k) for k in ("ServiceMonitor", "PodMonitor", "PrometheusRule")}
RENDERS = [f"kustomize/{o}" for o in OVERLAYS] + [f"helm/{v}" for v in HELM_VALUES]


def _render(name: str):
    kind, which = name.split("/", 1)
    return render_overlay(which) if kind == "kustomize" else render_helm(which)


@pytest.fixture(scope="module")
def kubernetes_validate():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed; run deploy/install-tools.sh")


def _validate_crd(obj: dict) -> list[str]:
    """Minimal structural check of the prometheus-operator objects (no schema ships for CRDs)."""
    errs = []
    spec = obj.get("spec") or {}
    kind = obj["kind"]
    if kind == "ServiceMonitor":
        if not spec.get("selector", {}).get("matchLabels"):
            errs.append("selector.matchLabels missing")
        if not spec.get("endpoints"):
            errs.append("endpoints missing")
        for ep in spec.get("endpoints", []):
            if set(ep) - {"port", "path", "interval", "scrapeTimeout", "scheme", "relabelings", "metricRelabelings"}:
                errs.append(f"unknown endpoint keys {set(ep)}")
    elif kind == "PodMonitor":
        if not spec.get("selector", {}).get("matchLabels"):
            errs.append("selector.matchLabels missing")
        if not spec.get("podMetricsEndpoints"):
            errs.append("podMetricsEndpoints missing")
    elif kind == "PrometheusRule":
        for group in spec.get("groups", []):
            if set(group) - {"name", "interval", "rules"} or not group.get("rules"):
                errs.append(f"bad group {group.get('name')}")
            for rule in group.get("rules", []):
                if set(rule) - {"alert", "record", "expr", "for", "labels", "annotations", "keep_firing_for"}:
                    errs.append(f"unknown rule keys {set(rule)}")
                if not rule.get("expr") or not (rule.get("alert") or rule.get("record")):
                    errs.append(f"rule without expr/alert: {rule}")
                if not re.fullmatch(r"(\d+[smhd])?", str(rule.get("for", ""))):
                    errs.append(f"bad duration {rule.get('for')}")
        if not spec.get("groups"):
            errs.append("no groups")
    return errs


@pytest.mark.parametrize("name", RENDERS)
def test_every_object_validates(name, kubernetes_validate):
    docs = _render(name)
    assert docs, f"{name} rendered nothing"
    problems = []
    for obj in docs:
        ident = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if (obj.get("apiVersion"), obj.get("kind")) in CRD_KINDS:
            problems += [f"{ident}: {e}" for e in _validate_crd(obj)]
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{ident}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_heedful_containers_match_interface(name):
    docs = _render(name)
    found = heedful_containers(docs)
    assert found, f"{name}: no heedful container"
    configmaps = {o["metadata"]["name"] for o in docs if o["kind"] == "ConfigMap"}
    for workload, spec, c in found:
        where = f"{name}: {workload['metadata']['name']}"
        assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("http", PORT)], where
        assert c["startupProbe"]["httpGet"]["path"] == HEALTH_PATH, where
        assert c["livenessProbe"]["httpGet"]["path"] == HEALTH_PATH, where
        assert c["readinessProbe"]["httpGet"]["path"] == READY_PATH, where
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"]["port"] in ("http", PORT), where
        env = {e["name"]: e for e in c["env"]}
        assert env["HEEDFUL_UPSTREAM"]["value"].startswith("http"), where
        assert env["HEEDFUL_PORT"]["value"] == str(PORT) and env["HEEDFUL_HOST"]["value"] == "0.0.0.0", where
        assert env["HEEDFUL_POLICIES"]["value"] == POLICY_DIR, where
        assert all(k.startswith("HEEDFUL_") or k in () for k in env if k.isupper()), where
        if "HEEDFUL_UPSTREAM_API_KEY" in env:
            assert "secretKeyRef" in env["HEEDFUL_UPSTREAM_API_KEY"]["valueFrom"], f"{where}: API key must come from a Secret"
        # resources from the benchmarks
        res = c["resources"]
        assert res["requests"] == {"cpu": "250m", "memory": "256Mi"}, where
        assert res["limits"] == {"cpu": "1000m", "memory": "384Mi"}, where
        # restrictive security context
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == UID and sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        # volumes: policies ConfigMap as a directory (hot reload needs no subPath), /tmp as emptyDir
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert set(mounts) == {POLICY_DIR, "/tmp"}, where
        assert "subPath" not in mounts[POLICY_DIR] and mounts[POLICY_DIR]["readOnly"] is True, where
        cm = volumes[mounts[POLICY_DIR]["name"]]["configMap"]["name"]
        assert cm in configmaps, f"{where}: policies ConfigMap {cm} not rendered"
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], where


def _pod_labels(docs, kind="Deployment"):
    return {o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"] for o in docs if o["kind"] == kind}


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("name", RENDERS)
def test_wiring_between_objects(name):
    docs = _render(name)
    pods = _pod_labels(docs)
    deployments = {o["metadata"]["name"]: o for o in docs if o["kind"] == "Deployment"}
    for d in deployments.values():
        assert _selects(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
    for obj in docs:
        kind, spec = obj["kind"], obj.get("spec", {})
        if kind == "Service":
            matched = [n for n, labels in pods.items() if _selects(spec["selector"], labels)]
            assert len(matched) == 1, f"{name}: Service {obj['metadata']['name']} selects {matched}"
            target_spec = pod_spec(deployments[matched[0]])
            named = {p["name"] for c in [*target_spec["containers"], *target_spec.get("initContainers", [])] for p in c.get("ports", [])}
            for port in spec["ports"]:
                assert port["targetPort"] in named, f"{name}: Service port {port} targets an unknown container port"
            if matched[0] != "chat-app" and "redis" not in matched[0]:
                assert spec["ports"][0]["targetPort"] == "http"
        elif kind == "HorizontalPodAutoscaler":
            assert spec["scaleTargetRef"]["name"] in deployments
            assert spec["minReplicas"] >= 2
        elif kind == "PodDisruptionBudget":
            assert any(_selects(spec["selector"]["matchLabels"], labels) for labels in pods.values())
        elif kind == "ServiceMonitor":
            services = [o for o in docs if o["kind"] == "Service" and _selects(spec["selector"]["matchLabels"], o["metadata"]["labels"])]
            assert services, f"{name}: ServiceMonitor selects no Service"
            assert all(any(p["name"] == ep["port"] for p in services[0]["spec"]["ports"]) for ep in spec["endpoints"])
            assert all(ep["path"] == METRICS_PATH for ep in spec["endpoints"])
        elif kind == "PodMonitor":
            assert any(_selects(spec["selector"]["matchLabels"], labels) for labels in pods.values())
            assert all(ep["path"] == METRICS_PATH and ep["port"] == "http" for ep in spec["podMetricsEndpoints"])


def test_modes_differ_where_they_should():
    gateway = render_overlay("gateway")
    sidecar = render_overlay("sidecar")
    kinds = lambda docs: {o["kind"] for o in docs}  # noqa: E731
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "ServiceMonitor", "PrometheusRule"} <= kinds(gateway)
    (_, _, gw), = heedful_containers(gateway)
    assert any(e["name"] == "HEEDFUL_REDIS_URL" for e in gw["env"]), "gateway replicas share state through Redis"
    (app_dep, spec, sc), = heedful_containers(sidecar)
    assert not any(e["name"] == "HEEDFUL_REDIS_URL" for e in sc["env"])
    app = next(c for c in spec["containers"] if c["name"] != "heedful")
    assert {"name": "OPENAI_BASE_URL", "value": f"http://127.0.0.1:{PORT}/v1"} in app["env"]
    # Helm: every values file renders the mode it asks for.
    for values in HELM_VALUES:
        docs = render_helm(values)
        mode = "gateway" if values == "default" else yaml.safe_load((CHART / "ci" / f"{values}.yaml").read_text())["mode"]
        has_hpa_or_service = any(o["kind"] == "Service" and o["spec"]["ports"][0]["targetPort"] == "http" for o in docs)
        assert has_hpa_or_service == (mode == "gateway"), values


def test_native_sidecar_is_an_init_container_with_restart_always():
    (_, spec, c), = heedful_containers(render_helm("sidecar-native-values"))
    assert c in spec["initContainers"] and c["restartPolicy"] == "Always"


def test_kustomize_renderers_agree():
    renderers = [r for r, _ in kustomize_renderers()]
    if len(renderers) < 2:
        pytest.skip(f"only {renderers or 'no'} kustomize renderer available; nothing to compare")
    for overlay in OVERLAYS:
        assert render_overlay(overlay, renderers[0]) == render_overlay(overlay, renderers[1]), overlay


def test_helm_lint_strict():
    helm = find_tool("helm")
    if not helm:
        pytest.skip("helm not found; run deploy/install-tools.sh")
    run([helm, "lint", "--strict", str(CHART)])
    for values in HELM_VALUES[1:]:
        run([helm, "lint", "--strict", str(CHART), "-f", str(CHART / "ci" / f"{values}.yaml")])


def _rules(docs) -> dict[str, str]:
    return {
        r["alert"]: " ".join(r["expr"].split())
        for o in docs
        if o["kind"] == "PrometheusRule"
        for g in o["spec"]["groups"]
        for r in g["rules"]
    }


def test_helm_and_kustomize_ship_the_same_alerts_and_dashboard():
    assert _rules(render_helm("gateway-values")) == _rules(render_overlay("gateway"))
    assert "HeedfulRedisUnavailable" not in _rules(render_helm("sidecar-values")), "no Redis alert without Redis"
    chart_dash = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert chart_dash == json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text()), (
        "copy deploy/monitoring/grafana-dashboard.json to deploy/helm/heedful/files/"
    )
    cm = next(o for o in render_helm("gateway-values") if o["kind"] == "ConfigMap" and "heedful.json" in o.get("data", {}))
    assert json.loads(cm["data"]["heedful.json"]) == chart_dash


def test_values_yaml_documents_every_key():
    """Every key has a comment right above it, except keys inside a default value documented with `# --`
    (e.g. resources.requests.cpu under a documented `resources`)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documents a whole default value)
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(- )?([A-Za-z_][\w.-]*):", line)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        comments = []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            comments.append(lines[j].strip())
            j -= 1
        if not any(value_doc for _, value_doc in stack) and not comments and not m.group(2):
            undocumented.append(f"values.yaml:{i + 1}: {line.strip()}")
        stack.append((indent, any(c.startswith("# --") for c in comments) or bool(m.group(2))))
    assert not undocumented, "undocumented keys:\n" + "\n".join(undocumented)
