#!/bin/sh
# Runs one fuzz target for a bounded time on a working corpus seeded from the fixtures.
#   run_fuzz.sh BINARY SECONDS WORKDIR [SEED_FILE_OR_DIR | --lines FILE ...]
# "--lines FILE" makes one seed per line of FILE (kernel log records, one per /dev/kmsg read).
# The working corpus (WORKDIR/corpus) is kept between runs, so repeated runs build on each other.
# Crash inputs land in WORKDIR/ as crash-*, leak-*, timeout-*; turn each into a regression file in
# tests/fixtures/fuzz-regressions/<target>/ (fuzz/README.md).
set -eu
bin=$1 seconds=$2 work=$3
shift 3
mkdir -p "$work/corpus"
lines=0
for seed in "$@"; do
    if [ "$seed" = "--lines" ]; then
        lines=1
        continue
    fi
    if [ "$lines" = 1 ]; then
        lines=0
        n=0
        while IFS= read -r line; do
            n=$((n + 1))
            printf '%s\n' "$line" > "$work/corpus/line-$n-$(basename "$seed")"
        done < "$seed"
    elif [ -d "$seed" ]; then
        find "$seed" -type f -exec cp -f {} "$work/corpus/" \; 2>/dev/null || true
    elif [ -f "$seed" ]; then
        # Distinct names: fixtures of different machines share base names (buddyinfo, zoneinfo).
        cp -f "$seed" "$work/corpus/$(echo "$seed" | tr '/' '_')"
    fi
done
# -timeout: one input may take at most 10 s (a hang is a bug); -rss_limit_mb: a few GiB at most on
# a 2-core CI machine; -max_len: the largest fixture (zoneinfo) is under 10 KiB.
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus"
