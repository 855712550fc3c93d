#!/usr/bin/env bash
# Checks the deployment files without a cluster: the Kustomize overlays
# render, every object validates against the Kubernetes API schemas, Volta's
# rules for its workloads hold, each volta.toml matches the configuration
# schema, and the Dockerfile passes hadolint (deploy/check.py says how).
# Needs kubectl (its built-in kustomize) and openssl; installs the rest into
# a virtual environment, $VOLTA_DEPLOY_VENV (default ~/.cache/volta/venv-deploy).
set -euo pipefail
cd "$(dirname "$0")"
venv="${VOLTA_DEPLOY_VENV:-$HOME/.cache/volta/venv-deploy}"
if ! command -v kubectl >/dev/null; then
  echo "deploy/check.sh: kubectl is needed to render the overlays (kubectl kustomize)" >&2
  exit 1
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! cmp -s requirements.txt "$venv/.volta-requirements"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt "$venv/.volta-requirements"
fi
PATH="$venv/bin:$PATH" "$venv/bin/python" check.py
