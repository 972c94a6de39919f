#!/usr/bin/env bash
# Copy the repository's default policies (policies/*.yaml, *.yml; not *_test suites) into the places
# Kubernetes deployments take them from: the Kustomize base ConfigMap and the Helm chart's files/policies.
# tests/deploy/test_policies.py fails when they drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d policies ]] || { echo "sync-policies: no policies/ directory" >&2; exit 1; }
for dest in deploy/kustomize/base/policies deploy/helm/heedful/files/policies; do
  rm -f "$dest"/*.yaml "$dest"/*.yml
  for f in policies/*.yaml policies/*.yml; do
    [[ -f "$f" ]] || continue
    case "$(basename "$f")" in .*|*_test.yaml|*_test.yml) continue ;; esac
    cp "$f" "$dest/"
  done
done
# Rewrite the configMapGenerator file list of the Kustomize base.
python3 - <<'PY'
import pathlib, re
base = pathlib.Path("deploy/kustomize/base")
files = sorted(p.name for p in (base / "policies").iterdir() if p.suffix in (".yaml", ".yml"))
k = base / "kustomization.yaml"
text = k.read_text()
block = "".join(f"      - policies/{name}\n" for name in files)
text = re.sub(r"(    files:\n)(      - policies/.*\n)+", lambda m: m.group(1) + block, text)
k.write_text(text)
PY
echo "sync-policies: synced $(ls deploy/kustomize/base/policies | wc -l) policy file(s)"
