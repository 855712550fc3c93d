#!/usr/bin/env bash
# Makes sure the services the tests talk to are running, and tells the tests
# where: PostgreSQL for the model store's second backend. Sourced by test.sh.
# VOLTA_TEST_POSTGRES_URL may point elsewhere; set it to "" to skip.
if [ -z "${VOLTA_TEST_POSTGRES_URL+set}" ]; then
  export VOLTA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/test"
fi
if [ -n "$VOLTA_TEST_POSTGRES_URL" ] && command -v pg_isready >/dev/null; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "services: starting PostgreSQL" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO service postgresql start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi
