#!/bin/sh
# ciguard check against upstream's Go evaluator, side by side, on the same fixtures.
#
#   bench/anchor.sh                 # the shared upstream fixtures ×12, 10 rounds
#   bench/anchor.sh --copies 1 --rounds 20
#   bench/anchor.sh DIR             # any directory of pod manifests
#
# Builds target/release/ciguard and bench/anchor (a Go module on
# k8s.io/pod-security-admission v0.37.2, the version of the newest upstream rules),
# then runs the two alternately, each over the same files at restricted/latest, output
# to /dev/null, and prints wall time, CPU time (user + system) and peak RSS (GNU time's
# %M) per run, the medians and the ratios ciguard / Go. On a busy machine compare CPU
# time: wall time then measures the other work too. Needs cargo, go (offline is fine
# once the module cache holds the k8s.io modules) and /usr/bin/time.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
target="${CARGO_TARGET_DIR:-target}"
copies=12
rounds=10
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --copies) copies="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) dir="$1"; shift ;;
    esac
done

# CIGUARD=path/to/ciguard times that binary instead of building target/release/ciguard.
bin="${CIGUARD:-}"
if [ -z "$bin" ]; then
    cargo build --quiet --release --bin ciguard
    bin="$target/release/ciguard"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd bench/anchor && go build -o "$work/anchor" .)

if [ -z "$dir" ]; then
    shared="$root/../shared/pss/fixtures"
    [ -d "$shared" ] || { echo "no fixtures at $shared; pass a directory" >&2; exit 2; }
    dir="$work/fixtures"
    i=1
    while [ "$i" -le "$copies" ]; do
        mkdir -p "$dir/c$i" && cp -r "$shared"/. "$dir/c$i/"
        i=$((i + 1))
    done
fi
files=$(find "$dir" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | wc -l)
echo "check over $files files in $dir, restricted/latest, $rounds rounds, alternating"

# One timed run: "<wall s> <KiB> <CPU s>"; the exit code (0 or 1: denied pods) is expected.
timed() {
    /usr/bin/time -f '%e %M %U %S' -o "$work/t" "$@" >/dev/null 2>"$work/err" || [ $? -eq 1 ] ||
        { cat "$work/err" >&2; exit 2; }
    # GNU time writes "Command exited with non-zero status 1" first when the exit is 1.
    tail -n 1 "$work/t" | awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}'
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

: >"$work/rust" && : >"$work/go"
r=1
while [ "$r" -le "$rounds" ]; do
    timed "$bin" check --level restricted --version latest "$dir" >>"$work/rust"
    timed "$work/anchor" "$dir" >>"$work/go"
    r=$((r + 1))
done
for who in rust go; do
    wall=$(cut -d' ' -f1 "$work/$who" | median)
    kib=$(cut -d' ' -f2 "$work/$who" | median)
    cpu=$(cut -d' ' -f3 "$work/$who" | median)
    echo "$wall $kib $cpu" >"$work/$who.median"
    name=$([ "$who" = rust ] && echo "ciguard" || echo "Go     ")
    printf '%s median %s s wall, %s s CPU, %s MiB peak RSS (wall per run: %s)\n' "$name" "$wall" "$cpu" \
        "$(echo "$kib" | awk '{printf "%.1f", $1/1024}')" "$(cut -d' ' -f1 "$work/$who" | tr '\n' ' ')"
done
paste -d' ' "$work/rust.median" "$work/go.median" |
    awk '{printf "ratio ciguard/Go: %.2f wall, %.2f CPU, %.2f peak RSS\n", $1 / $4, $3 / $6, $2 / $5}'
