#!/usr/bin/env bash
# Installs everything Volta needs to build and test, idempotently:
# system packages (cmake and libclang for HiGHS; protoc and the well-known
# protos, Timestamp and Duration, for the gRPC layer),
# the Rust components, and cargo-nextest. Safe to run again; fast when
# everything is present.
set -euo pipefail

# highs-sys needs cmake, a C++ compiler and libclang (bindgen); its libclang
# error only shows after the whole HiGHS compile, so check up front.
need_apt=()
for pkg in cmake g++ libclang1-14 protobuf-compiler libprotobuf-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
