#!/usr/bin/env bash
# Runs the SPEC §9 benchmarks one after another (never in parallel: they share 2 cores) and prints each
# one's figures beside its peer's. Every benchmark repeats its measurement (--runs, default 3) and
# reports medians; the machine is noisy, so read ratios, not absolute times.
#
#   bash bench/run-all.sh [--json] [--quick] [NAME...]
#     NAME: pause-to-refusal drain-detection tcp-proxy memory-per-session reroute-under-load dns-convergence etcd-load sip-calls dns-qps http-proxy embed-overhead handoff
#
# --json writes one JSON document per benchmark to stdout (progress goes to stderr); --quick runs each
# once with fewer cycles/shorter loads. Exit status: the number of benchmarks that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh --bench || { echo "run-all: could not install what the benchmarks need" >&2; exit 2; }
node=node_modules/.bin/node
command -v haproxy >/dev/null || echo "run-all: haproxy is not installed (apt-get install -y haproxy): its columns will be skipped" >&2
have_etcd=1
[ -x "${EBB_ETCD_BIN:-/usr/bin/etcd}" ] || {
  have_etcd=0
  echo "run-all: etcd is not installed (apt-get install -y etcd-server): etcd-load is skipped, dns-convergence runs on SQLite only" >&2
}

json=()
quick=0
names=()
for arg in "$@"; do
  case "$arg" in
    --json) json=(--json) ;;
    --quick) quick=1 ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) names+=("$arg") ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(pause-to-refusal drain-detection tcp-proxy memory-per-session reroute-under-load dns-convergence etcd-load sip-calls dns-qps http-proxy embed-overhead handoff)

declare -A quick_args=(
  [pause-to-refusal]="--runs 1 --cycles 15 --cli-cycles 2"
  [drain-detection]="--runs 1 --cycles 30"
  [tcp-proxy]="--runs 1 --seconds 2"
  [memory-per-session]="--runs 1"
  [reroute-under-load]="--runs 1 --cycles 10"
  [dns-convergence]="--runs 1 --cycles 10 --simulated 200"
  [etcd-load]="--runs 1 --seconds 4 --sizes 100,1000"
  [embed-overhead]="--short"
  [handoff]="--quick"
)

# The hard stop per benchmark (seconds): the etcd ones start a fresh etcd cluster and up to 3,000 leases
# for every run (each normally takes 5-10 minutes).
declare -A time_limit=(
  [dns-convergence]=1800
  [etcd-load]=1800
)

failed=0
for name in "${names[@]}"; do
  script="bench/$name.ts"
  [ -f "$script" ] || { echo "run-all: no $script" >&2; failed=$((failed + 1)); continue; }
  extra=()
  [ "$quick" = 1 ] && read -r -a extra <<<"${quick_args[$name]:-}"
  if [ "$have_etcd" = 0 ]; then
    case "$name" in
      etcd-load) echo "run-all: skipping etcd-load (no etcd)" >&2; continue ;;
      dns-convergence) extra+=(--store sqlite) ;;
    esac
  fi
  echo "== $name" >&2
  # A hard stop per benchmark, on top of each one's own bounds.
  if ! timeout --kill-after=10 "${time_limit[$name]:-900}" "$node" --disable-warning=ExperimentalWarning "$script" "${json[@]}" "${extra[@]}"; then
    echo "run-all: $name failed" >&2
    failed=$((failed + 1))
  fi
  [ ${#json[@]} -gt 0 ] || echo
done
exit "$failed"
