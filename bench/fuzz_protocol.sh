#!/usr/bin/env bash
# Long fuzz run of the C link-frame decoder under ASan + UBSan
# (the test suite runs 100,000 inputs; this runs as many as you like).
#
#   bench/fuzz_protocol.sh [ITERATIONS] [SEED] [JOBS]
#
# ITERATIONS defaults to 10,000,000, split over JOBS processes (default 1) with
# seeds SEED, SEED+1, ...; SEED defaults to the current time and is printed so
# that a failure can be replayed with the same arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

iterations=${1:-10000000}
seed=${2:-$(date +%s)}
jobs=${3:-1}
out=${FUZZ_BUILD_DIR:-build/fuzz}
exe="$out/fuzz_link_decoder"

mkdir -p "$out"
gcc -std=c99 -O1 -g -Wall -Wextra -Werror \
    -fsanitize=address,undefined -fno-sanitize-recover=all \
    firmware/link/test/fuzz_link_decoder.c \
    firmware/link/link_protocol.c firmware/link/link_cobs.c firmware/link/link_crc16.c \
    -o "$exe"

echo "fuzz: $iterations inputs, seed $seed, $jobs job(s)"
per_job=$(( (iterations + jobs - 1) / jobs ))
pids=()
for ((j = 0; j < jobs; j++)); do
    "$exe" "$((seed + j))" "$per_job" > "$out/job$j.log" 2>&1 &
    pids+=($!)
done
status=0
for ((j = 0; j < jobs; j++)); do
    if wait "${pids[$j]}"; then
        echo "job $j (seed $((seed + j))): $(cat "$out/job$j.log")"
    else
        status=1
        echo "job $j (seed $((seed + j))) FAILED:"; tail -n 30 "$out/job$j.log"
    fi
done
exit $status
