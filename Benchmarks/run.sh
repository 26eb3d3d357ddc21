#!/usr/bin/env bash
# artifactfs benchmarks (SPEC §8): native ext4, bindfs and artifactfs measured side by side,
# in one run, on the same disk, and reported as medians and ratios. It only prints: nothing
# here asserts a wall-clock figure.
#
#   sudo Benchmarks/run.sh                          # full size: 1 GiB file, 10,000 small files
#   BENCH_BIG_MB=16 BENCH_SMALL_FILES=200 BENCH_REPS=1 Benchmarks/run.sh   # quick smoke run
#
# Environment:
#   BENCH_DIR          work folder (default: <repo>/bench-work; it is wiped and refilled)
#   BENCH_REPS         repetitions per workload; medians are reported (default 3)
#   BENCH_BIG_MB       size of the big file in MiB (default 1024)
#   BENCH_SMALL_FILES  number of small files (default 10000)
#   BENCH_IMPORT_FILES number of small files `artifactfs import` takes in (f) (default 100000)
#   ARTIFACTFS_BIN     the artifactfs binary (default: <repo>/.build/release/artifactfs)
#   BENCH_REF_CMD      optional: one more FUSE filesystem to measure beside the others, as a
#                      command that mounts a backing folder: `$BENCH_REF_CMD BACKDIR MNT`
#                      (started in the background; the script waits for the mount). For
#                      example libfuse's example/passthrough_hp, built by hand from its
#                      release tag: it is never part of this repository. Its figures are
#                      printed in a second table.
#   BENCH_REF_NAME     its name in that table (default: the command's file name)
#
# Needs root: cold runs drop the page cache through /proc/sys/vm/drop_caches, and the FUSE
# mounts are made by this user. Without root the cold figures are printed as n/a.
#
# Nothing is deleted while measuring: every repetition writes to new names (and a new
# artifactfs store). After many files are deleted, ext4 spends seconds per 10,000 new files
# skipping recently freed inodes (recently_deleted() in its inode allocator), for minutes.
# So the previous run's data is moved aside at the start and deleted only at the end; do
# not run this right after deleting a large tree on the same filesystem. The last run's
# data (about 3 x BENCH_REPS + 2 times the big file) stays in BENCH_DIR until the next run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$REPO/bench-work}
REPS=${BENCH_REPS:-3}
BIG_MB=${BENCH_BIG_MB:-1024}
SMALL_FILES=${BENCH_SMALL_FILES:-10000}
IMPORT_FILES=${BENCH_IMPORT_FILES:-100000}
AFS=${ARTIFACTFS_BIN:-$REPO/.build/release/artifactfs}
REF_CMD=${BENCH_REF_CMD:-}
REF_NAME=${BENCH_REF_NAME:-$(basename "${REF_CMD%% *}" 2>/dev/null)}

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- checks

[[ -x $AFS ]] || die "no artifactfs binary at $AFS (build it, or set ARTIFACTFS_BIN)"
AFS=$(cd "$(dirname "$AFS")" && pwd)/$(basename "$AFS")
[[ $REPS =~ ^[1-9][0-9]*$ && $BIG_MB =~ ^[1-9][0-9]*$ && $SMALL_FILES =~ ^[1-9][0-9]*$ ]] ||
  die "BENCH_REPS, BENCH_BIG_MB and BENCH_SMALL_FILES must be positive integers"
command -v python3 >/dev/null || die "python3 is needed to make the small files"

if ! command -v bindfs >/dev/null; then
  log "bindfs is missing; installing it with mount-scripts/install-deps.sh"
  # install-deps.sh also insists on a Swift toolchain and may exit non-zero for that
  # reason alone; all this script needs from it is bindfs.
  "$REPO/mount-scripts/install-deps.sh" || true
  command -v bindfs >/dev/null || die "bindfs could not be installed"
fi

CAN_DROP=1
if ! { [[ $(id -u) -eq 0 ]] && [[ -w /proc/sys/vm/drop_caches ]]; }; then
  CAN_DROP=0
  log "not root (or drop_caches not writable): cold figures will be n/a"
fi

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

# Refuse to wipe a work folder that something (perhaps an earlier, killed run) still has
# mounted below it: rm -rf would reach through the mount into someone's data.
mounts_under() { awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts; }
if [[ -n $(mounts_under "$BENCH_DIR") ]]; then
  die "something is mounted under $BENCH_DIR; unmount it first: $(mounts_under "$BENCH_DIR" | tr '\n' ' ')"
fi

need_kb=$(( (BIG_MB * 1024) * (2 + 3 * REPS) + SMALL_FILES * 8 * (1 + 3 * REPS) ))
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
(( avail_kb > need_kb )) || die "need about $((need_kb / 1024)) MiB free in $BENCH_DIR, have $((avail_kb / 1024))"

SRC=$BENCH_DIR/src                 # the data every system copies from
NATIVE=$BENCH_DIR/native           # a plain ext4 folder
BIND_BACK=$BENCH_DIR/bindfs-back   # what bindfs passes through to
BIND_MNT=$BENCH_DIR/bindfs-mnt
REF_BACK=$BENCH_DIR/ref-back       # what the reference filesystem (BENCH_REF_CMD) passes through to
REF_MNT=$BENCH_DIR/ref-mnt
AFS_STORES=$BENCH_DIR/afs-stores # one fresh store per repetition of (a) and (c)
AFS_STORE=$AFS_STORES/initial
AFS_MNT=$BENCH_DIR/afs-mnt
PROJECT=bench
# The previous run's data goes aside (a rename is instant) and is deleted at the end.
OLD=$BENCH_DIR/.old
mkdir -p "$OLD"
aside=$(mktemp -d "$OLD/run.XXXXXX")
for d in "$SRC" "$NATIVE" "$BIND_BACK" "$BIND_MNT" "$REF_BACK" "$REF_MNT" "$AFS_STORES" "$AFS_MNT"; do
  if [[ -e $d ]]; then mv "$d" "$aside/"; fi
done
mkdir -p "$SRC" "$NATIVE" "$BIND_BACK" "$BIND_MNT" "$REF_BACK" "$REF_MNT" "$AFS_STORES" "$AFS_MNT"

# ---------------------------------------------------------------------------- mounts

# Only what this script mounted is unmounted, on any exit. A flag is raised *before* its
# mount command runs and lowered after its unmount: bash runs the exit trap between two
# commands, so this order never forgets a mount; cleanup then asks the mount table.
BIND_MOUNTED=0
AFS_MOUNTED=0
is_mounted() { findmnt --mountpoint "$1" >/dev/null; }

bindfs_mount() { BIND_MOUNTED=1; bindfs "$BIND_BACK" "$BIND_MNT"; }
bindfs_unmount() { fusermount3 -u "$BIND_MNT"; BIND_MOUNTED=0; }

# The reference filesystem, when BENCH_REF_CMD names one: the systems measured below.
REF_MOUNTED=0
SYSTEMS=(native bindfs artifactfs)
if [[ -n $REF_CMD ]]; then SYSTEMS+=(ref); fi
ref_mount() {
  REF_MOUNTED=1
  # shellcheck disable=SC2086  # the command may carry its own options
  $REF_CMD "$REF_BACK" "$REF_MNT" >"$BENCH_DIR/ref.log" 2>&1 &
  for _ in $(seq 100); do is_mounted "$REF_MNT" && return 0; sleep 0.1; done
  die "BENCH_REF_CMD did not mount $REF_MNT (see $BENCH_DIR/ref.log)"
}
ref_unmount() { fusermount3 -u "$REF_MNT"; REF_MOUNTED=0; }

# A quiet period of an hour: sealing happens only when the benchmark asks for it, never in
# the middle of a copy, so every sealed run holds exactly one workload.
afs_mount() {
  AFS_MOUNTED=1
  "$AFS" init --store "$AFS_STORE" --quiet >/dev/null
  "$AFS" mount --store "$AFS_STORE" "$AFS_MNT" --quiet-period 3600 >/dev/null
}
afs_unmount() {
  if is_mounted "$AFS_MNT"; then "$AFS" unmount "$AFS_MNT" >/dev/null; fi
  AFS_MOUNTED=0
}
# afs_fresh NAME: remount on a new, empty store with one project, so every upload is
# measured as a first upload, not as a deduplicated re-upload of an earlier repetition.
afs_fresh() {
  afs_unmount
  AFS_STORE=$AFS_STORES/$1
  afs_mount
  mkdir "$AFS_MNT/projects/$PROJECT"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if (( AFS_MOUNTED )) && is_mounted "$AFS_MNT"; then
    "$AFS" unmount "$AFS_MNT" >/dev/null || {
      log "artifactfs unmount failed; detaching $AFS_MNT lazily (see $AFS_STORE/daemon.log)"
      fusermount3 -u -z "$AFS_MNT" || true
    }
  fi
  if (( BIND_MOUNTED )) && is_mounted "$BIND_MNT"; then
    fusermount3 -u "$BIND_MNT" || fusermount3 -u -z "$BIND_MNT" || true
  fi
  if (( REF_MOUNTED )) && is_mounted "$REF_MNT"; then
    fusermount3 -u "$REF_MNT" || fusermount3 -u -z "$REF_MNT" || true
  fi
  (( rc == 0 )) || log "failed (exit $rc); artifactfs daemon log: $AFS_STORE/daemon.log"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------- timing

# drop_caches: write back and drop page cache, dentries and inodes, so the next read hits
# the disk (and, for FUSE, the daemon).
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# time_cmd CMD...: runs CMD in this shell and leaves its wall time in seconds in $ELAPSED.
time_cmd() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
}

declare -A RESULTS   # "<workload>.<system>" -> space-separated seconds
record() { RESULTS[$1.$2]="${RESULTS[$1.$2]:-} $3"; log "  $1 $2: $3 s"; }

median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Before every timed write: drop the page cache (then warm the source again), so that every
# system starts from the same state. On a VM with virtio-balloon free page reporting (this
# machine: /sys/module/page_reporting), memory the guest freed is handed back to the host
# and costs a host-side fault per page when it is used again, so what ran before decides
# how much of a write pays for that: the same 1 GiB cp into incoming/ took 0.7 s or 3.5 s
# (2026-11-30). A FUSE write fills two page caches (the FUSE file's and the backing file's),
# native one, so such a machine penalises FUSE writes most; expect a spread in (a) and (e).
settle() { if (( CAN_DROP )); then drop_caches; else sync; fi; }

# Reading the source before a copy keeps the copy about writing: every system reads it
# from the page cache.
warm_source_big() { cat "$SRC/big.bin" >/dev/null; }
warm_source_small() { find "$SRC/small" -type f -exec cat {} + >/dev/null; }

# dd with 1 MiB blocks on every system: cat would pick its buffer from st_blksize, which
# differs between ext4 and artifactfs.
read_file() { dd if="$1" of=/dev/null bs=1M status=none; }

# ---------------------------------------------------------------------------- data

log "making the data in $SRC: ${BIG_MB} MiB file, $SMALL_FILES small files"
dd if=/dev/urandom of="$SRC/big.bin" bs=1M count="$BIG_MB" status=none
# Distinct random content (no deduplication shortcut), 200 B to 4 KiB, reproducible sizes.
python3 - "$SRC/small" "$SMALL_FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
rng = random.Random(42)
for i in range(n):
    with open(os.path.join(root, f"f{i:06d}.dat"), "wb") as f:
        f.write(os.urandom(rng.randint(200, 4096)))
EOF
sync

bindfs_mount
if [[ -n $REF_CMD ]]; then ref_mount; fi

seal() {  # seal incoming/ now and remember the run id
  RUN_ID=$("$AFS" seal "$AFS_MNT/projects/$PROJECT/incoming")
  [[ -n $RUN_ID ]] || die "artifactfs seal printed no run id"
}

# -------------------------------------------------- (a) cp of the big file, then sync

copy_big_native() { cp "$SRC/big.bin" "$NATIVE/big-$rep.bin"; sync; }
copy_big_bindfs() { cp "$SRC/big.bin" "$BIND_MNT/big-$rep.bin"; sync; }
copy_big_afs() { cp "$SRC/big.bin" "$AFS_MNT/projects/$PROJECT/incoming/big.bin"; seal; sync; }
copy_big_ref() { cp "$SRC/big.bin" "$REF_MNT/big-$rep.bin"; sync; }

log "(a) cp of a ${BIG_MB} MiB file + sync"
for ((rep = 1; rep <= REPS; rep++)); do
  # The systems take turns within a repetition so slow drift on a noisy machine hits all.
  afs_fresh "big-$rep"; sync
  settle; warm_source_big; time_cmd copy_big_native; record a native "$ELAPSED"
  settle; warm_source_big; time_cmd copy_big_bindfs; record a bindfs "$ELAPSED"
  settle; warm_source_big; time_cmd copy_big_afs; record a artifactfs "$ELAPSED"
  if [[ -n $REF_CMD ]]; then settle; warm_source_big; time_cmd copy_big_ref; record a ref "$ELAPSED"; fi
done
BIG_RUN=$RUN_ID
AFS_BIG=$AFS_MNT/projects/$PROJECT/runs/$BIG_RUN/raw_source/big.bin
cmp "$SRC/big.bin" "$AFS_BIG" || die "the sealed big file differs from its source: $AFS_BIG"

# -------------------------------------------------- (b) sequential read, cold and warm

log "(b) sequential read of the ${BIG_MB} MiB file"
declare -A BIG_PATH=([native]=$NATIVE/big-$REPS.bin [bindfs]=$BIND_MNT/big-$REPS.bin [artifactfs]=$AFS_BIG [ref]=$REF_MNT/big-$REPS.bin)
for ((rep = 1; rep <= REPS; rep++)); do
  for sys in "${SYSTEMS[@]}"; do
    if (( CAN_DROP )); then
      drop_caches; time_cmd read_file "${BIG_PATH[$sys]}"; record b_cold "$sys" "$ELAPSED"
    fi
  done
done
for sys in "${SYSTEMS[@]}"; do read_file "${BIG_PATH[$sys]}"; done   # warm up
for ((rep = 1; rep <= REPS; rep++)); do
  for sys in "${SYSTEMS[@]}"; do
    time_cmd read_file "${BIG_PATH[$sys]}"; record b_warm "$sys" "$ELAPSED"
  done
done

# -------------------------------------------------- (e) re-upload vs sha256sum

# The store already holds the big file's content; uploading it again to the same path
# should cost about one SHA-256 pass. sha256sum reads the (cached) source on one core.
reupload_afs() { cp "$SRC/big.bin" "$AFS_MNT/projects/$PROJECT/incoming/big.bin"; seal; sync; }
hash_source() { sha256sum "$SRC/big.bin" >/dev/null; }
# coreutils' sha256sum on Debian does not use the CPU's SHA extensions; OpenSSL does, so it
# is printed as a second, stricter single-core reference when it is installed.
hash_source_openssl() { openssl dgst -sha256 "$SRC/big.bin" >/dev/null; }
HAVE_OPENSSL=0
command -v openssl >/dev/null && HAVE_OPENSSL=1

log "(e) re-upload of identical content vs sha256sum"
for ((rep = 1; rep <= REPS; rep++)); do
  settle; warm_source_big; time_cmd hash_source; record e sha256sum "$ELAPSED"
  if (( HAVE_OPENSSL )); then
    time_cmd hash_source_openssl; record e openssl "$ELAPSED"
  fi
  settle; warm_source_big; time_cmd reupload_afs; record e artifactfs "$ELAPSED"
done

# -------------------------------------------------- (c) cp -r of small files, then sync

copy_small_native() { cp -r "$SRC/small" "$NATIVE/small-$rep"; sync; }
copy_small_bindfs() { cp -r "$SRC/small" "$BIND_MNT/small-$rep"; sync; }
copy_small_afs() { cp -r "$SRC/small" "$AFS_MNT/projects/$PROJECT/incoming/small"; seal; sync; }
copy_small_ref() { cp -r "$SRC/small" "$REF_MNT/small-$rep"; sync; }

log "(c) cp -r of $SMALL_FILES small files + sync"
for ((rep = 1; rep <= REPS; rep++)); do
  afs_fresh "small-$rep"; sync
  settle; warm_source_small; time_cmd copy_small_native; record c native "$ELAPSED"
  settle; warm_source_small; time_cmd copy_small_bindfs; record c bindfs "$ELAPSED"
  settle; warm_source_small; time_cmd copy_small_afs; record c artifactfs "$ELAPSED"
  if [[ -n $REF_CMD ]]; then settle; warm_source_small; time_cmd copy_small_ref; record c ref "$ELAPSED"; fi
done
SMALL_RUN=$RUN_ID
n=$(find "$AFS_MNT/projects/$PROJECT/runs/$SMALL_RUN/raw_source/small" -type f | wc -l)
(( n == SMALL_FILES )) || die "the sealed run $SMALL_RUN holds $n small files, not $SMALL_FILES"

# -------------------------------------------------- (d) ls -l of the small-file folder

list_dir() { ls -l "$1" >/dev/null; }
small_dir() {
  case $1 in
    native) echo "$NATIVE/small-$REPS" ;;
    bindfs) echo "$BIND_MNT/small-$REPS" ;;
    artifactfs) echo "$AFS_MNT/projects/$PROJECT/runs/$SMALL_RUN/raw_source/small" ;;
    ref) echo "$REF_MNT/small-$REPS" ;;
  esac
}

log "(d) ls -l of a $SMALL_FILES-entry folder"
for ((rep = 1; rep <= REPS; rep++)); do
  for sys in "${SYSTEMS[@]}"; do
    (( CAN_DROP )) || continue
    # A FUSE daemon keeps caches of its own that drop_caches cannot reach: remount it.
    # (bindfs keeps none, but is remounted too so both FUSE mounts start alike.)
    case $sys in
      bindfs) bindfs_unmount; bindfs_mount ;;
      artifactfs) afs_unmount; afs_mount ;;
      ref) ref_unmount; ref_mount ;;
    esac
    dir=$(small_dir "$sys")
    drop_caches; time_cmd list_dir "$dir"; record d_cold "$sys" "$ELAPSED"
  done
done
for sys in "${SYSTEMS[@]}"; do list_dir "$(small_dir "$sys")"; done   # warm up
for ((rep = 1; rep <= REPS; rep++)); do
  for sys in "${SYSTEMS[@]}"; do
    time_cmd list_dir "$(small_dir "$sys")"; record d_warm "$sys" "$ELAPSED"
  done
done

# The same listing warm in the other trees (SPEC §8: as fast as runs/): latest/, a version,
# and the working tree it was committed from. Native is the same ext4 folder as above.
log "(d) ls -l warm in latest/, a version and @main/"
mkdir "$AFS_MNT/datasets/bench"
cp -r "$SRC/small" "$AFS_MNT/datasets/bench/@main/small"
"$AFS" seal "$AFS_MNT/datasets/bench/@main" >/dev/null   # on a branch, seal commits
BENCH_VERSION=$(ls "$AFS_MNT/datasets/bench/versions" | tail -1)
other_dir() {
  case $1 in
    latest) echo "$AFS_MNT/projects/$PROJECT/latest/small" ;;
    version) echo "$AFS_MNT/datasets/bench/versions/$BENCH_VERSION/small" ;;
    main) echo "$AFS_MNT/datasets/bench/@main/small" ;;
  esac
}
for tree in latest version main; do list_dir "$(other_dir $tree)"; done   # warm up
for ((rep = 1; rep <= REPS; rep++)); do
  for tree in latest version main; do
    time_cmd list_dir "$(small_dir native)"; record "d_$tree" native "$ELAPSED"
    time_cmd list_dir "$(other_dir $tree)"; record "d_$tree" artifactfs "$ELAPSED"
  done
done

# -------------------------------------------------- (f) artifactfs import, store not mounted
# SPEC §8: import of many small files at least as fast as native `cp -r` (+ sync), and of the
# big file at >= 0.8 x single-core SHA-256 speed (openssl dgst -sha256, the CPU's SHA
# extensions). Each repetition imports into a new, empty store (made by a mount and unmount),
# so every file is stored, none deduplicated.
log "making $IMPORT_FILES small files to import (100 folders)"
python3 - "$SRC/import" "$IMPORT_FILES" <<'EOF2'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
for i in range(n):
    d = os.path.join(root, f"d{i % 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07d}.dat"), "wb") as f:
        f.write(os.urandom(rng.randint(200, 4096)))
EOF2
sync
afs_new_store() { afs_fresh "$1"; afs_unmount; }
import_small_native() { cp -r "$SRC/import" "$NATIVE/import-$rep"; sync; }
import_small_afs() { "$AFS" import --store "$AFS_STORE" "$SRC/import" --project imp --json >/dev/null; sync; }
import_big_afs() { "$AFS" import --store "$AFS_STORE" "$SRC/big.bin.d" --project imp --json >/dev/null; sync; }
mkdir -p "$SRC/big.bin.d"; ln -f "$SRC/big.bin" "$SRC/big.bin.d/big.bin"
warm_source_import() { find "$SRC/import" -type f -exec cat {} + >/dev/null; }
log "(f) import of $IMPORT_FILES small files vs cp -r; import of ${BIG_MB} MiB vs openssl dgst -sha256"
for ((rep = 1; rep <= REPS; rep++)); do
  settle; warm_source_import; time_cmd import_small_native; record f_small native "$ELAPSED"
  afs_new_store "import-small-$rep"
  settle; warm_source_import; time_cmd import_small_afs; record f_small artifactfs "$ELAPSED"
  if (( HAVE_OPENSSL )); then settle; warm_source_big; time_cmd hash_source_openssl; record f_big openssl "$ELAPSED"; fi
  afs_new_store "import-big-$rep"
  settle; warm_source_big; time_cmd import_big_afs; record f_big artifactfs "$ELAPSED"
done

afs_unmount
bindfs_unmount
if [[ -n $REF_CMD ]]; then ref_unmount; fi

# ---------------------------------------------------------------------------- report

ratio() {  # ratio A B -> A/B with two decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

big_label="cp ${BIG_MB} MiB + sync"
small_label="cp -r ${SMALL_FILES} files + sync"
echo
echo "artifactfs benchmarks, $(date -u +%Y-%m-%dT%H:%MZ): medians of $REPS run(s), in seconds"
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)," \
  "disk $(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $1 " (" $2 ")" }'), bindfs $(bindfs --version | awk '{ print $2 }')"
echo
FMT='| %-30s | %9s | %9s | %10s | %13s | %10s | %-16s |\n'
# shellcheck disable=SC2059  # the format is ours
printf "$FMT" workload native bindfs artifactfs bindfs/native afs/native "target (afs/nat)"
# shellcheck disable=SC2059
printf "$FMT" "$(printf -- '-%.0s' {1..30})" "--------:" "--------:" "---------:" "------------:" "---------:" "----------------"
row() {  # row KEY LABEL TARGET
  local n b a
  n=$(median "${RESULTS[$1.native]:-}"); b=$(median "${RESULTS[$1.bindfs]:-}"); a=$(median "${RESULTS[$1.artifactfs]:-}")
  # shellcheck disable=SC2059
  printf "$FMT" \
    "$2" "$n" "$b" "$a" "$(ratio "$b" "$n")" "$(ratio "$a" "$n")" "$3"
}
row a "(a) $big_label" "<= 1.25"
row b_cold "(b) read ${BIG_MB} MiB, cold" "<= 1.25"
row b_warm "(b) read ${BIG_MB} MiB, warm" "<= 1.1"
row c "(c) $small_label" "<= 1.5"
row d_cold "(d) ls -l ${SMALL_FILES}, cold" "<= 3"
row d_warm "(d) ls -l ${SMALL_FILES}, warm" "<= 1.5"
row d_latest "(d) ... in latest/, warm" "<= 1.5"
row d_version "(d) ... in a version, warm" "<= 1.5"
row d_main "(d) ... in @main/, warm" "<= 1.5"
# (e) in the same table: "native" is sha256sum of the file, so afs/native is a time ratio;
# the SPEC's ">= 0.8 x SHA-256 speed" is the same as a time ratio <= 1.25.
RESULTS[e.native]=${RESULTS[e.sha256sum]}
row e "(e) re-upload vs sha256sum" "<= 1.25 (=0.8x)"
# (f): "native" is cp -r for the small files and openssl dgst -sha256 for the big file.
row f_small "(f) import ${IMPORT_FILES} files" "<= 1 (vs cp -r)"
RESULTS[f_big.native]=${RESULTS[f_big.openssl]:-}
row f_big "(f) import ${BIG_MB} MiB" "<= 1.25 (vs openssl)"

if [[ -n $REF_CMD ]]; then
  echo
  echo "reference FUSE filesystem: $REF_NAME ($REF_CMD), the same workloads without a seal"
  RFMT='| %-30s | %9s | %12s | %12s | %12s |\n'
  # shellcheck disable=SC2059
  printf "$RFMT" workload native "$REF_NAME" artifactfs "ref/native"
  # shellcheck disable=SC2059
  printf "$RFMT" "$(printf -- '-%.0s' {1..30})" "--------:" "-----------:" "-----------:" "-----------:"
  declare -A LABEL=([a]="(a) $big_label" [b_cold]="(b) read ${BIG_MB} MiB, cold" [b_warm]="(b) read ${BIG_MB} MiB, warm"
                     [c]="(c) $small_label" [d_cold]="(d) ls -l ${SMALL_FILES}, cold" [d_warm]="(d) ls -l ${SMALL_FILES}, warm")
  for k in a b_cold b_warm c d_cold d_warm; do
    n=$(median "${RESULTS[$k.native]:-}"); r=$(median "${RESULTS[$k.ref]:-}"); a=$(median "${RESULTS[$k.artifactfs]:-}")
    # shellcheck disable=SC2059
    printf "$RFMT" "${LABEL[$k]}" "$n" "$r" "$a" "$(ratio "$r" "$n")"
  done
fi

sha=$(median "${RESULTS[e.sha256sum]}")
re=$(median "${RESULTS[e.artifactfs]}")
mbps() { awk -v s="$1" -v mb="$BIG_MB" 'BEGIN { if (s == "n/a" || s == 0) print "n/a"; else printf "%.0f\n", mb / s }'; }
echo
echo "(e) re-upload of identical ${BIG_MB} MiB into artifactfs (cp + seal + sync) vs sha256sum of it:"
echo "    sha256sum $sha s ($(mbps "$sha") MiB/s), re-upload $re s ($(mbps "$re") MiB/s)," \
  "speed ratio re-upload/sha256sum $(ratio "$sha" "$re") (target >= 0.8)"
if (( HAVE_OPENSSL )); then
  ossl=$(median "${RESULTS[e.openssl]}")
  echo "    openssl dgst -sha256 $ossl s ($(mbps "$ossl") MiB/s), speed ratio re-upload/openssl $(ratio "$ossl" "$re")"
fi
echo
echo "all samples (s):"
for key in $(printf '%s\n' "${!RESULTS[@]}" | grep -vx -e 'e.native' -e 'f_big.native' | sort); do
  printf '  %-22s%s\n' "$key" "${RESULTS[$key]}"
done

# Deleting comes last, after all measurements (see the note at the top).
log "deleting the previous run's data in $OLD"
rm -rf "${OLD:?}"
