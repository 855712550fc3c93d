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
# NATS with JetStream, for settlement between processes. VOLTA_TEST_NATS_URL
# may point elsewhere; set it to "" to skip those tests.
if [ -z "${VOLTA_TEST_NATS_URL+set}" ]; then
  export VOLTA_TEST_NATS_URL="nats://127.0.0.1:4222"
fi
if [ -n "$VOLTA_TEST_NATS_URL" ] && [ "$VOLTA_TEST_NATS_URL" = "nats://127.0.0.1:4222" ]; then
  if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
      echo "services: starting NATS with JetStream" >&2
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log >/dev/null 2>&1 || true
      for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 1; done
    fi
  fi
  (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null || { echo "services: NATS is not reachable on 127.0.0.1:4222" >&2; exit 1; }
fi
