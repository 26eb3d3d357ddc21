#!/usr/bin/env bash
# SPEC §8, "commit 1 changed file on a 100,000-file branch: < 20 ms beyond the file's own cost".
#
# Builds a dataset whose branch holds BENCH_BRANCH_FILES files (copied in through the mount and
# committed), and a dataset with one file. Each repetition appends a line to one file of each
# and times `artifactfs commit` on both; the one-file branch is the file's own cost (process
# start, the commit round trip, hashing and storing the file), so the difference of the
# medians is what the branch's size adds. It also counts the catalog rows one commit writes.
# It only prints: nothing here asserts a wall-clock figure.
#
#   sudo Benchmarks/commit-cost.sh                              # 100,000 files, 5 repetitions
#   BENCH_BRANCH_FILES=2000 BENCH_REPS=3 Benchmarks/commit-cost.sh    # quick smoke run
#
# Environment: BENCH_DIR (work folder, default <repo>/bench-work; this script uses and wipes
# its commit-cost/ subfolder), BENCH_REPS (default 5), BENCH_BRANCH_FILES (default 100000),
# ARTIFACTFS_BIN (default <repo>/.build/release/artifactfs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$REPO/bench-work}
REPS=${BENCH_REPS:-5}
FILES=${BENCH_BRANCH_FILES:-100000}
AFS=${ARTIFACTFS_BIN:-$REPO/.build/release/artifactfs}

log() { printf '%s commit-cost: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'commit-cost: %s\n' "$*" >&2; exit 1; }

[[ -x $AFS ]] || die "no artifactfs binary at $AFS (build it, or set ARTIFACTFS_BIN)"
[[ $REPS =~ ^[1-9][0-9]*$ && $FILES =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS and BENCH_BRANCH_FILES must be positive integers"
command -v python3 >/dev/null || die "python3 is needed to make the files and count rows"

WORK=$BENCH_DIR/commit-cost
# Never wipe a folder that something still has mounted below it.
if awk -v d="$WORK" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
  die "something is still mounted under $WORK; unmount it first"
fi
rm -rf "$WORK"
mkdir -p "$WORK/src" "$WORK/mnt"
STORE=$WORK/store MNT=$WORK/mnt

MOUNTED=0
cleanup() {
  local rc=$?
  if (( MOUNTED )) && findmnt --mountpoint "$MNT" >/dev/null; then
    "$AFS" unmount "$MNT" >/dev/null || fusermount3 -u -z "$MNT" || true
  fi
  (( rc == 0 )) || log "failed (exit $rc); daemon log: $STORE/daemon.log"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
entry_rows() {
  python3 -c 'import sqlite3, sys; print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT COUNT(*) FROM entry").fetchone()[0])' "$STORE/catalog.sqlite"
}

log "making $FILES files (100 B each, 1,000 per folder)"
python3 - "$WORK/src/tree" "$FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d)
    with open(os.path.join(d, f"f{i:06d}.csv"), "w") as f:
        f.write(f"id,value\n{i},{'x' * 80}\n")
EOF

MOUNTED=1
"$AFS" init --store "$STORE" --quiet >/dev/null
"$AFS" mount --store "$STORE" "$MNT" --quiet-period 3600 >/dev/null
BIG=$MNT/datasets/big SMALL=$MNT/datasets/small
mkdir "$BIG" "$SMALL"

log "copying $FILES files into datasets/big/@main and committing them"
t0=$(now)
cp -r "$WORK/src/tree/." "$BIG/@main/"
copy_ms=$(ms_since "$t0")
t0=$(now)
"$AFS" commit "$BIG/@main" -m "base: $FILES files" >/dev/null
base_ms=$(ms_since "$t0")
cp "$WORK/src/tree/d0000/f000000.csv" "$SMALL/@main/"
"$AFS" commit "$SMALL/@main" -m "base: 1 file" >/dev/null
n=$(find "$MNT/datasets/big/versions" -mindepth 2 -type f | wc -l)
(( n == FILES )) || die "the base version holds $n files, not $FILES"

BIG_SAMPLES="" SMALL_SAMPLES="" ROWS=""
for ((rep = 1; rep <= REPS; rep++)); do
  # Both branches take turns so drift on a noisy machine hits both.
  echo "$rep,changed" >> "$BIG/@main/d0000/f000000.csv"
  before=$(entry_rows)
  t0=$(now); "$AFS" commit "$BIG/@main" -m "change $rep" >/dev/null; ms=$(ms_since "$t0")
  ROWS="$ROWS $(( $(entry_rows) - before ))"
  BIG_SAMPLES="$BIG_SAMPLES $ms"
  log "  $FILES-file branch: $ms ms"
  echo "$rep,changed" >> "$SMALL/@main/f000000.csv"
  t0=$(now); "$AFS" commit "$SMALL/@main" -m "change $rep" >/dev/null; ms=$(ms_since "$t0")
  SMALL_SAMPLES="$SMALL_SAMPLES $ms"
  log "  1-file branch: $ms ms"
done
"$AFS" verify --store "$STORE" >/dev/null || die "verify found problems after the benchmark"

big=$(median "$BIG_SAMPLES") small=$(median "$SMALL_SAMPLES")
echo
echo "commit cost, $(date -u +%Y-%m-%dT%H:%MZ): medians of $REPS run(s)"
echo "machine: $(nproc) cores, kernel $(uname -r), disk $(df -PT "$WORK" | awk 'NR == 2 { print $1 " (" $2 ")" }')"
echo
echo "| workload                                        | median ms | target     |"
echo "| ----------------------------------------------- | --------: | ---------- |"
printf '| %-47s | %9s | %-10s |\n' "commit 1 changed file, $FILES-file branch" "$big" ""
printf '| %-47s | %9s | %-10s |\n' "commit 1 changed file, 1-file branch (own cost)" "$small" ""
printf '| %-47s | %9s | %-10s |\n' "difference (what the branch's size adds)" "$(awk -v a="$big" -v b="$small" 'BEGIN { printf "%.1f", a - b }')" "< 20 ms"
echo
echo "catalog entry rows written per one-file commit:$ROWS"
echo "setup: cp -r of $FILES files into @main ${copy_ms} ms; their first commit ${base_ms} ms"
echo "samples (ms): $FILES-file branch:$BIG_SAMPLES; 1-file branch:$SMALL_SAMPLES"
