#!/usr/bin/env bash
# The cost of one seal as a project's history grows (SPEC §8: flat in the number of runs).
#
#   Benchmarks/seal-many-runs.sh                      # checkpoints at 1, 250, 1000 and 2000 runs
#   BENCH_RUNS="1 50 100" Benchmarks/seal-many-runs.sh   # quick smoke run
#
# Mounts a fresh store, then for each run writes one small file to incoming/ and seals it
# with `artifactfs seal` (the product's own path: the control xattr, the daemon's seal, the
# CLI reading user.artifactfs.last_run back). At each checkpoint it times BENCH_SAMPLES more
# seals of one file and prints their median in milliseconds. It only prints.
#
# Environment:
#   BENCH_DIR       work folder (default: <repo>/bench-work/seal-many-runs; wiped first)
#   BENCH_RUNS      checkpoints, ascending run counts (default "1 250 1000 2000")
#   BENCH_SAMPLES   seals timed at each checkpoint (default 9)
#   ARTIFACTFS_BIN  the artifactfs binary (default: <repo>/.build/release/artifactfs)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$REPO/bench-work/seal-many-runs}
CHECKPOINTS=${BENCH_RUNS:-1 250 1000 2000}
SAMPLES=${BENCH_SAMPLES:-9}
AFS=${ARTIFACTFS_BIN:-$REPO/.build/release/artifactfs}

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

[[ -x $AFS ]] || die "no artifactfs binary at $AFS (build it, or set ARTIFACTFS_BIN)"
[[ $SAMPLES =~ ^[1-9][0-9]*$ ]] || die "BENCH_SAMPLES must be a positive integer"
for c in $CHECKPOINTS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be positive integers"; done

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/mnt"
STORE=$BENCH_DIR/store MNT=$BENCH_DIR/mnt
DAEMON=
cleanup() {
  fusermount3 -u "$MNT" 2>/dev/null || true
  if [[ -n $DAEMON ]]; then wait "$DAEMON" 2>/dev/null || true; fi
}
trap cleanup EXIT

# A long quiet period: only the explicit seals below make runs.
"$AFS" init --store "$STORE" --quiet >/dev/null
"$AFS" mount --store "$STORE" "$MNT" --quiet-period 3600 --foreground 2>"$BENCH_DIR/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || die "the mount did not come up (see $BENCH_DIR/daemon.log)"
mkdir "$MNT/projects/many"
IN=$MNT/projects/many/incoming

made=0
seal_one() {
  made=$((made + 1))
  printf '%s\n' "$made" > "$IN/f$made.txt"
  "$AFS" seal "$IN" >/dev/null
}

# Median of the given numbers.
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-10s %s\n' "runs" "seal of one file, median ms ($SAMPLES samples)"
for target in $CHECKPOINTS; do
  while (( made < target )); do seal_one; done
  at=$made
  times=()
  for _ in $(seq "$SAMPLES"); do
    start=$(date +%s%N)
    seal_one
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
  done
  printf '%-10s %s\n' "$at" "$(median "${times[@]}")"
  log "$made runs"
done
