#!/usr/bin/env bash
# Set-up on a fresh machine: what npm cannot install, where it is missing (Debian's chromium, which
# the browser tests drive; Debian's redis-server, for v4), then the npm packages. It needs root (or
# sudo) only when something is missing; a package it cannot install is named in the error.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(chromium redis-server)

missing() {
  local out=()
  for p in "${PACKAGES[@]}"; do command -v "$p" >/dev/null 2>&1 || out+=("$p"); done
  echo "${out[@]:-}"
}

found() {
  for p in "${PACKAGES[@]}"; do
    command -v "$p" >/dev/null 2>&1 && echo "setup: found $p at $(command -v "$p")" >&2
  done
  return 0
}

need=$(missing)
found
if [ -n "$need" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup: missing $need: install Debian's package(s) as root (apt-get install $need), then run this again" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing $need, and this machine has no apt-get: install the package(s) $need with its package manager" >&2
    exit 1
  fi
  echo "setup: installing $need (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086 # one word per package
  "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq $need >/dev/null || true
  still=$(missing)
  if [ -n "$still" ]; then
    echo "setup: could not install $still: install Debian's package(s) $still (apt-get install $still)" >&2
    exit 1
  fi
  echo "setup: installed $need" >&2
fi
echo "setup: installing the npm packages (npm ci)" >&2
npm ci --no-audit --no-fund
echo "setup: ready: npm run stress runs the main job, npm test the tests" >&2
