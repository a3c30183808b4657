#!/usr/bin/env bash
# Installs what Ebb needs on a fresh machine: npm packages (including the pinned Node 24 runtime), and,
# when asked, the Debian packages the tests use as real peers. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ebb: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# Debian packages are only needed for the tests (--peers) and benchmarks (--bench) that run real peers.
if [ "${1:-}" = "--peers" ] || [ "${1:-}" = "--bench" ]; then
  want=(haproxy dnsutils dnsperf unbound etcd-server etcd-client sip-tester kamailio baresip netcat-openbsd iproute2 chromium curl openssl)
  # The kernel data path (SPEC §12): nft for its rules (ss comes with iproute2).
  want+=(nftables)
  # The load tool and the upstream of bench/http-proxy.ts; nginx runs with its own config, not the service.
  [ "$1" = "--bench" ] && want+=(wrk nginx-light)
  missing=()
  for pkg in "${want[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "ebb: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi
