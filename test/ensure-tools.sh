#!/usr/bin/env bash
# What the test suite drives for real besides Node: Nix (the deploy engine), promtool (a real
# Prometheus parser for /metrics), Chromium (the fleet view) and strace (which fsyncs the audit
# store's own appends really issue). Installed once, before the
# tests run in parallel, so two tests never race for apt's lock; without root, one clear line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../nixos/ensure-nix.sh"

missing=()
[ -x /usr/bin/promtool ] || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/strace ] || missing+=(strace)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "ensure-tools: the tests need ${missing[*]}; install with 'apt-get install -y ${missing[*]}' as root" >&2
exit 1
