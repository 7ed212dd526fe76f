#!/usr/bin/env bash
# Checks the deployment artifacts that can be checked without a container daemon:
# the systemd unit with `systemd-analyze verify` (against the built binary), the
# scripts with shellcheck, and the Dockerfile's stages and health check by reading it.
#
#   bash deploy/check.sh [path/to/pushauth]     (default: target/debug/pushauth)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/pushauth}
[ -x "$bin" ] || { echo "deploy/check.sh: build the server first ($bin missing)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

if command -v systemd-analyze >/dev/null; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  # Same unit, with ExecStart pointing at the binary we built (verify checks that the
  # executable exists) and the credentials at files that exist here.
  mkdir -p "$scratch/credentials"
  sed -e "s#/usr/local/bin/pushauth#$bin#" \
      -e "s#/etc/pushauth/credentials/#$scratch/credentials/#" \
      deploy/systemd/pushauth.service > "$scratch/pushauth.service"
  out=$(systemd-analyze verify "$scratch/pushauth.service" 2>&1 || true)
  # Lines about other units on this machine are not ours.
  ours=$(printf '%s\n' "$out" | grep -F "pushauth.service" || true)
  if [ -n "$ours" ]; then
    printf '%s\n' "$ours" >&2
    echo "deploy/check.sh: systemd-analyze verify found problems in the unit" >&2
    exit 1
  fi
  echo "systemd unit: systemd-analyze verify passed"
else
  echo "systemd unit: systemd-analyze not installed, not verified"
fi

dockerfile=deploy/docker/Dockerfile
grep -q '^FROM .* AS build$' "$dockerfile"
grep -q '^USER 10001' "$dockerfile"
grep -q 'HEALTHCHECK .*' "$dockerfile"
grep -q '"probe"' "$dockerfile"
echo "Dockerfile: multi-stage, non-root, health check present (not built here: no daemon)"

if command -v shellcheck >/dev/null; then
  shellcheck deploy/check.sh
  echo "shellcheck: deploy scripts clean"
fi
