#!/usr/bin/env bash
# The test suite under CPU starvation, as on a loaded CI machine: `npm test` (the README's test command)
# with busy loops beside it, several runs in a row, stopping at the first failure (issue 9).
#
#   bash scripts/ci-stress.sh [--runs N] [--busy N] [--timeout SECONDS] [--clone]
#
#   --runs N       runs in a row (default 3); stops at the first that fails
#   --busy N       busy loops beside each run (default 2: one per core of the 2-core CI machine)
#   --timeout S    the most one run may take, in seconds (default 3600); the busy loops end with it
#   --clone        each run on a fresh clone of HEAD in a temp dir, as CI runs it
#                  (git clone -q . DIR && cd DIR && CI=true bash .ci/run </dev/null); uncommitted
#                  changes are not in it. A failed run's clone is kept, a passed one removed.
#
# EBB_STRESS_CMD='…' runs that command (with bash -c, in the checkout or the clone) instead of the suite,
# e.g. one test file, to check the loop quickly. Each run's output goes to
# /tmp/ebb-ci-stress-<date>/run-N.log; the log of a failed run is named and its end printed.
# The busy loops are started by this script, each bounded by `timeout`, and ended by their PIDs however
# the script ends. Exit status: 0 when every run passed, else the failed run's status (2: bad usage).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

runs=3
busy=2
run_timeout=3600
clone=0
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
need_value() { [ $# -ge 2 ] || { echo "ci-stress: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) need_value "$@"; runs=$2; shift 2 ;;
    --busy) need_value "$@"; busy=$2; shift 2 ;;
    --timeout) need_value "$@"; run_timeout=$2; shift 2 ;;
    --clone) clone=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "ci-stress: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
for value in "$runs" "$busy" "$run_timeout"; do
  [[ "$value" =~ ^[0-9]+$ ]] || { echo "ci-stress: --runs, --busy and --timeout take whole numbers" >&2; exit 2; }
done
[ "$runs" -ge 1 ] && [ "$run_timeout" -ge 1 ] || { echo "ci-stress: --runs and --timeout must be at least 1" >&2; exit 2; }

logs=/tmp/ebb-ci-stress-$(date +%Y%m%d-%H%M%S)
[ -e "$logs" ] && logs="$logs-$$"
mkdir -p "$logs"

if [ -n "${EBB_STRESS_CMD:-}" ]; then
  cmd=$EBB_STRESS_CMD
elif [ "$clone" = 1 ]; then
  cmd='bash .ci/run'
else
  cmd='npm test'
fi

busy_pids=()
busy_flag=''
run_pid=''
clone_dir=''
# A clone runs as CI runs it: CI=true, no stdin.
run_env=()
[ "$clone" = 1 ] && run_env=(CI=true)

stop_busy() {
  [ -n "$busy_flag" ] && rm -f "$busy_flag"
  for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${busy_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  busy_pids=()
}

cleanup() {
  # The run in progress (its `timeout` passes the signal on to the whole run), then the busy loops.
  if [ -n "$run_pid" ]; then
    kill "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  stop_busy
}
trap cleanup EXIT
trap 'echo "ci-stress: interrupted" >&2; exit 130' INT TERM

start_busy() {
  busy_flag="$logs/.busy-$1"
  : >"$busy_flag"
  for _ in $(seq 1 "$busy"); do
    # Spins until stop_busy removes the flag or this script is gone, and at the latest until its
    # `timeout` ends it — even when a kill arrives before `timeout` is set up, or this script is killed
    # with SIGKILL.
    timeout --kill-after=5 "$((run_timeout + 60))" \
      bash -c 'while [ -e "$1" ] && kill -0 "$2" 2>/dev/null; do :; done' busy "$busy_flag" "$$" &
    busy_pids+=("$!")
  done
}

if [ "$clone" = 1 ]; then
  echo "ci-stress: each run on a fresh clone of HEAD ($(git -C "$repo" rev-parse --short HEAD))" >&2
  [ -z "$(git -C "$repo" status --porcelain)" ] || echo "ci-stress: note: uncommitted changes are not in the clone" >&2
fi
echo "ci-stress: $runs run(s) of: ${run_env[*]}${run_env[*]:+ }$cmd — with $busy busy loop(s); logs in $logs" >&2

for run in $(seq 1 "$runs"); do
  log="$logs/run-$run.log"
  dir=$repo
  if [ "$clone" = 1 ]; then
    clone_dir=$(mktemp -d /tmp/ebb-ci-clone-XXXXXX)
    if ! git clone -q "$repo" "$clone_dir" >"$log" 2>&1; then
      echo "ci-stress: run $run: git clone failed; log: $log" >&2
      exit 1
    fi
    dir=$clone_dir
  fi
  echo "== run $run/$runs (log: $log)" >&2
  started=$(date +%s)
  start_busy "$run"
  (cd "$dir" && exec env "${run_env[@]}" timeout --kill-after=30 "$run_timeout" bash -c "$cmd") </dev/null >>"$log" 2>&1 &
  run_pid=$!
  wait "$run_pid"
  status=$?
  run_pid=''
  stop_busy
  took=$(($(date +%s) - started))
  if [ "$status" -ne 0 ]; then
    [ "$status" -eq 124 ] && echo "ci-stress: run $run timed out after ${run_timeout} s" >&2
    echo "ci-stress: run $run of $runs FAILED (exit $status, ${took} s); its log: $log" >&2
    [ -n "$clone_dir" ] && echo "ci-stress: its clone is kept: $clone_dir" >&2
    echo "--- last 40 lines of $log" >&2
    tail -n 40 "$log" >&2
    exit "$status"
  fi
  echo "ci-stress: run $run passed (${took} s)" >&2
  if [ -n "$clone_dir" ]; then
    rm -rf "$clone_dir"
    clone_dir=''
  fi
done
echo "ci-stress: all $runs run(s) passed; logs in $logs" >&2
