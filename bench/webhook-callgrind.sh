#!/bin/sh
# Instructions per admission request, counted by callgrind: the figure docs/performance.md
# judges every webhook change by, because unlike wall time it does not move with the
# machine's load. Builds ciguard (`release`, or --profile) and the load client, runs
# `ciguard serve` under `valgrind --tool=callgrind` twice through the load client
# (100 req/s, 8 kept-alive HTTPS connections, the GitLab Runner AdmissionReview), once for
# 300 requests and once for 800, and prints (instructions of the long run - of the short
# run) / 500: start-up, the policy load and the 8 TLS handshakes are in both runs and
# cancel out.
#
#   bench/webhook-callgrind.sh                        # /mutate
#   bench/webhook-callgrind.sh --endpoint /validate
#   bench/webhook-callgrind.sh --profile dist         # the server as the image ships it
#   bench/webhook-callgrind.sh --floor                # examples/https_floor.rs: the same
#                                                     # TLS and HTTP stack doing no work
#   bench/webhook-callgrind.sh --keep DIR             # keep the callgrind files, then:
#   callgrind_annotate --inclusive=yes DIR/callgrind.8s.out | less
#
# Needs valgrind (Debian: apt-get install valgrind). About a minute once built.
set -eu
cd "$(dirname "$0")/.."
endpoint=/mutate
profile=release
keep=""
floor=""
while [ $# -gt 0 ]; do
    case "$1" in
    --endpoint) endpoint=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --floor) floor=1; shift ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed (Debian: apt-get install valgrind)" >&2
    exit 1
fi
target="${CARGO_TARGET_DIR:-target}"
# The server is started from a script in a temporary directory: its path must be absolute.
case "$target" in
/*) ;;
*) target="$PWD/$target" ;;
esac
cargo build --quiet --profile "$profile" --bin ciguard
server_bin="$target/$profile/ciguard"
if [ -n "$floor" ]; then
    cargo build --quiet --profile "$profile" --example https_floor
    server_bin="$target/$profile/examples/https_floor"
fi
cargo build --quiet --release --example webhook_load
work=$(mktemp -d)
out=${keep:-$work}
mkdir -p "$out"
# A server still running (the script interrupted) is stopped on the way out.
trap 'for f in "$out"/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done; rm -rf "$work"' EXIT

# The load client kills its server with SIGKILL, which leaves callgrind no time to write
# its counts: the wrapper it starts runs the server in the background, so the server
# outlives the wrapper and is stopped below with SIGTERM (a graceful shutdown).
cat >"$work/server" <<EOF
#!/bin/sh
valgrind --tool=callgrind --callgrind-out-file="\$CALLGRIND_OUT" "$server_bin" "\$@" \
    >"\$CALLGRIND_OUT.log" 2>&1 &
echo \$! >"\$CALLGRIND_OUT.pid"
wait
EOF
chmod +x "$work/server"

# run SECONDS: prints "REQUESTS INSTRUCTIONS"
run() {
    file="$out/callgrind.$1s.out"
    status=0
    CALLGRIND_OUT=$file "$target/release/examples/webhook_load" --server "$work/server" \
        --endpoint "$endpoint" --rate 100 --duration "$1" --connections 8 >"$file.load" 2>&1 ||
        status=$?
    if [ -f "$file.pid" ]; then
        pid=$(cat "$file.pid")
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
        rm -f "$file.pid"
    fi
    requests=$(sed -n 's/^requests: \([0-9]*\) ok, 0 failed$/\1/p' "$file.load")
    instructions=""
    if [ -f "$file.log" ]; then
        instructions=$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$file.log")
    fi
    if [ "$status" -ne 0 ] || [ -z "$requests" ] || [ -z "$instructions" ]; then
        echo "the run of $1 s failed:" >&2
        cat "$file.load" >&2
        [ -f "$file.log" ] && cat "$file.log" >&2
        return 1
    fi
    echo "$requests $instructions"
}

short=$(run 3) || exit 1
long=$(run 8) || exit 1
set -- $short $long
echo "POST $endpoint, GitLab Runner pod, $profile build${floor:+ of the floor (examples/https_floor.rs)}: $1 requests $2 instructions, $3 requests $4 instructions"
echo "instructions per request: $(( ($4 - $2) / ($3 - $1) ))"
