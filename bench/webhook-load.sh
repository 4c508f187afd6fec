#!/bin/sh
# Load test of the admission webhook: builds ciguard and the load client in release
# mode, starts `ciguard serve` on 127.0.0.1 with a fresh certificate, POSTs the GitLab
# Runner AdmissionReview to /mutate over HTTPS at a target rate for a bounded time, and
# prints requests/s, p50 and p99 latency, the server's CPU per request over the load
# phase (utime+stime from /proc/<pid>/stat, start-up excluded) and its peak RSS (VmHWM).
# The server's pid is printed on stderr for a profiler (perf record -p <pid>).
#
#   bench/webhook-load.sh                       # 5000 req/s for 10 s
#   bench/webhook-load.sh --rate 2000 --duration 5 --connections 8   # CPU per request
#   bench/webhook-load.sh --closed-loop --duration 5 --connections 8 # saturation, p50/p99, RSS
#   bench/webhook-load.sh --endpoint /validate --rate 2000 --duration 5 --connections 8
#   bench/webhook-load.sh --worker-threads 1 --rate 2000 --duration 5 --connections 8
#   bench/webhook-load.sh --no-audit --rate 2000 --duration 5 --connections 8     # audit log off
#   bench/webhook-load.sh --floor --worker-threads 1 --rate 2000 --duration 5 --connections 8
#       # the same load against examples/https_floor.rs: the same TLS and HTTP stack doing
#       # no work, the floor under any webhook's CPU per request on this machine
#   bench/webhook-load.sh --help
#
# Only cargo is needed. The client shares the machine with the server: on a small
# machine the numbers measure both.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
server="$target/release/ciguard"
if [ "${1:-}" = "--floor" ]; then
    shift
    cargo build --quiet --release --example https_floor
    server="$target/release/examples/https_floor"
fi
cargo build --quiet --release --bin ciguard --example webhook_load
exec "$target/release/examples/webhook_load" --server "$server" "$@"
