#!/usr/bin/env bash
# The API contract's checks: `buf lint` (STANDARD, and a comment on every
# message, field, enum value, service and method) and `buf breaking` against
# the released contract (service/api/released/volta.binpb, a buf image).
# buf comes from PyPI (buf-bin) into a virtual environment of its own.
#
# Usage: scripts/buf.sh            lint and check for breaking changes
#        scripts/buf.sh release    record the current protos as released
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=1.75.0
venv="${VOLTA_TOOLS_VENV:-$HOME/.cache/volta/venv-tools}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ "$("$venv/bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "buf-bin==$BUF_VERSION"
fi
buf="$venv/bin/buf"
released=service/api/released/volta.binpb

if [ "${1:-}" = release ]; then
  mkdir -p "$(dirname "$released")"
  (cd service/api && "$buf" build -o "../../$released")
  echo "buf: recorded the protos as released in $released"
  exit 0
fi

(cd service/api && "$buf" lint)
(cd service/api && "$buf" breaking --against "../../$released")
echo "buf: lint clean, no breaking change against $released"
