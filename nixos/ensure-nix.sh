#!/usr/bin/env bash
# Makes sure the Nix tools the deploy engine drives are on this host.
# Called by .ci/run, the test helpers and the demo scripts: a missing Nix must
# be a loud failure there, never a silently skipped test.
# On Debian, nix-bin gives a single-user Nix (no daemon) that builds, keeps
# profile generations and copies closures: enough for the engine and its tests.
set -euo pipefail

have_nix() {
  command -v nix-store >/dev/null 2>&1 &&
    command -v nix-env >/dev/null 2>&1 &&
    command -v nix >/dev/null 2>&1
}

if have_nix; then
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  # apt-get update first: on a fresh machine the package lists may be empty.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq nix-bin >/dev/null
  if have_nix; then
    exit 0
  fi
fi

echo "ensure-nix: Nix is missing; install it (Debian: 'apt-get install -y nix-bin' as root, elsewhere see https://nixos.org/download) so that nix, nix-store and nix-env are on PATH" >&2
exit 1
