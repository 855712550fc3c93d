#!/usr/bin/env bash
# The whole test suite: every Rust crate's unit, integration and doc tests
# (the model store against PostgreSQL too: scripts/services.sh starts it),
# the Python package's pytest suite (built into a venv), the checks of the
# deployment files, then the
# differential test of the dispatch optimiser against PyPSA.
# Usage: scripts/test.sh [extra nextest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
source scripts/services.sh

cargo test --workspace --locked --doc
cargo nextest run --workspace --locked --no-fail-fast -E 'not test(/restart_of_/)' "$@"
# Tests that restart a service other tests share (NATS, PostgreSQL) run alone, after the rest.
cargo nextest run --workspace --locked --no-fail-fast --test-threads 1 -E 'test(/restart_of_/)' "$@"

scripts/python-tests.sh

# The deployment files: the Kustomize overlays render and validate against
# the Kubernetes API schemas, the Dockerfile passes hadolint (deploy/check.py).
deploy/check.sh

# Volta against PyPSA (linopy + HiGHS) on the campus case and random cases:
# the same optimal cost within 1e-6 relative (installs PyPSA in a venv).
benches/pypsa/run.sh --random "${VOLTA_DIFF_CASES:-12}"
# The market's welfare clearing against the same problem written directly
# for HiGHS (highspy): the same welfare within 1e-6 relative.
benches/pypsa/run.sh market --books "${VOLTA_MARKET_BOOKS:-20}"
# The model `volta schedule --write-model` writes, read and solved by HiGHS
# alone (highspy): the schedule's objective within 1e-6 relative.
benches/pypsa/run.sh model --random "${VOLTA_MODEL_CASES:-8}"
# Two-stage stochastic plans from a real forecast against PyPSA's stochastic
# optimisation on the same scenarios, with the first stage imposed on its
# model: the same optimum within 1e-6 relative.
benches/pypsa/run.sh stochastic --scenarios 1 5 10
