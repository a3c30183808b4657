#!/usr/bin/env bash
# etcd with extra flags for a benchmark: test/harness/etcd-cluster.ts starts the binary named by
# EBB_ETCD_BIN; bench/lib/etcd-cluster.ts points that here and passes the extra flags in
# EBB_BENCH_ETCD_ARGS (e.g. --max-txn-ops=2048). `exec` keeps the PID etcd's own, so the harness still
# ends exactly the process it started.
# shellcheck disable=SC2086
exec "${EBB_BENCH_ETCD_REAL:-/usr/bin/etcd}" "$@" ${EBB_BENCH_ETCD_ARGS:-}
