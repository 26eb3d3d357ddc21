#!/usr/bin/env bash
# artifactfs at scale (SPEC §8): a store of a million small catalogued files, built through
# the product's own interfaces, and what it costs to mount, hold, list, seal into and verify.
# It only prints figures, with the SPEC's target beside each: nothing here asserts a time.
#
#   sudo Benchmarks/scale.sh                                   # full size: 1,000,000 files, 10,000 runs
#   sudo BENCH_FILES=20000 BENCH_RUNS=200 Benchmarks/scale.sh  # smoke run (a few minutes)
#
# What it does, in order:
#   1. makes a source tree of BENCH_FILES files of a few bytes each (distinct content), spread
#      over folders of BENCH_PER_FOLDER files, with python3;
#   2. mounts a fresh store (`mount --foreground`, quiet period of an hour: only explicit seals
#      make runs), `cp -r`s the tree into projects/big/incoming/ in batches of BENCH_BATCH
#      folders, then seals it all as one run with `artifactfs seal`;
#   3. unmounts and measures the catalog (catalog.sqlite plus its -wal and -shm) per
#      catalogued file, before and after `PRAGMA wal_checkpoint(TRUNCATE)` if sqlite3 exists;
#   4. mount-ready time of the populated store: from launching `artifactfs mount` until
#      `mountpoint -q` succeeds, cold (page cache dropped) and warm (remounted right after an
#      unmount, the store's files still in the page cache), BENCH_MOUNT_REPS times each;
#   5. the daemon's RSS (VmRSS, and its peak VmHWM, from /proc/PID/status) right after mount
#      and after `find MNT` over the whole tree;
#   6. `ls -lR` of the run's folder in runs/ and of latest/ (the same files), each cold
#      (remount + drop caches) and then warm; native `ls -lR` of the source tree for reference;
#   7. the cost of one seal of one small file: into a project that has 1 run (BENCH_SAMPLES
#      fresh projects, one sample each) and into a project with BENCH_RUNS runs (made one file
#      + one `artifactfs seal` at a time, as Benchmarks/seal-many-runs.sh does), interleaved,
#      medians in ms;
#   8. `artifactfs verify --store S` with the store unmounted and the page cache dropped;
#   9. a final table.
#
# Environment:
#   BENCH_DIR         work folder (default: <repo>/bench-work/scale; wiped first)
#   BENCH_FILES       small files in the big run (default 1000000)
#   BENCH_PER_FOLDER  files per source folder (default 1000)
#   BENCH_BATCH       folders per `cp -r` (default 100); all batches go into one seal
#   BENCH_RUNS        runs in the many-runs project (default 10000)
#   BENCH_SAMPLES     seals timed per project kind, medians reported (default 9)
#   BENCH_MOUNT_REPS  mount-ready samples, cold and warm each (default 3)
#   BENCH_MOUNT_WAIT  seconds to wait for a mount to become ready before giving up (default 600)
#   ARTIFACTFS_BIN    the artifactfs binary (default: <repo>/.build/release/artifactfs)
#
# Needs root for the cold figures (drop_caches); without it they are printed as n/a.
# Disk: about 2 x BENCH_FILES x 4 KiB (the source tree and the store's blobs), plus the
# catalog; about 9 GiB at full size. Run it under `nice -n 19 ionice -c3` on a shared machine
# (the figures then include the wait for CPU and disk). The work folder stays after the run;
# delete it yourself (on ext4, creating many files right after deleting many is slow, see
# Benchmarks/run.sh).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$REPO/bench-work/scale}
FILES=${BENCH_FILES:-1000000}
PER_FOLDER=${BENCH_PER_FOLDER:-1000}
BATCH=${BENCH_BATCH:-100}
RUNS=${BENCH_RUNS:-10000}
SAMPLES=${BENCH_SAMPLES:-9}
MOUNT_REPS=${BENCH_MOUNT_REPS:-3}
MOUNT_WAIT=${BENCH_MOUNT_WAIT:-600}
AFS=${ARTIFACTFS_BIN:-$REPO/.build/release/artifactfs}

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- checks

[[ -x $AFS ]] || die "no artifactfs binary at $AFS (build it, or set ARTIFACTFS_BIN)"
AFS=$(readlink -f "$AFS")   # as /proc/PID/exe shows it
for v in FILES PER_FOLDER BATCH RUNS SAMPLES MOUNT_REPS MOUNT_WAIT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer (is '${!v}')"
done
command -v python3 >/dev/null || die "python3 is needed to make the small files"
command -v fusermount3 >/dev/null || die "fusermount3 is needed"

CAN_DROP=1
if ! { [[ $(id -u) -eq 0 ]] && [[ -w /proc/sys/vm/drop_caches ]]; }; then
  CAN_DROP=0
  log "not root (or drop_caches not writable): cold figures will be n/a"
fi
HAVE_SQLITE=0
command -v sqlite3 >/dev/null && HAVE_SQLITE=1

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
# Refuse to wipe a work folder that something (perhaps an earlier, killed run) still has
# mounted below it: rm -rf would reach through the mount into someone's data.
mounts_under() { awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts; }
if [[ -n $(mounts_under "$BENCH_DIR") ]]; then
  die "something is mounted under $BENCH_DIR; unmount it first: $(mounts_under "$BENCH_DIR" | tr '\n' ' ')"
fi

need_kb=$(( FILES * 8 + 1024 * 1024 ))
rm -rf "${BENCH_DIR:?}"/*
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
(( avail_kb > need_kb )) || die "need about $((need_kb / 1024)) MiB free in $BENCH_DIR, have $((avail_kb / 1024))"
need_inodes=$(( FILES * 2 + RUNS * 2 + 100000 ))
free_inodes=$(df -Pi "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
[[ ! $free_inodes =~ ^[0-9]+$ ]] || (( free_inodes > need_inodes )) ||
  die "need about $need_inodes free inodes in $BENCH_DIR, have $free_inodes"

SRC=$BENCH_DIR/src
STORE=$BENCH_DIR/store
MNT=$BENCH_DIR/mnt
DLOG=$BENCH_DIR/daemon.log   # the foreground daemons' stderr, all mounts appended
mkdir -p "$SRC" "$MNT"

# ---------------------------------------------------------------------------- mounts

# DAEMON is the pid of the background `artifactfs mount --foreground`, which is the daemon
# itself. MOUNTED is raised before the mount command runs and lowered after its unmount, so
# the exit trap (run between two commands) never forgets a mount.
MOUNTED=0
DAEMON=

# mount_store: launches the daemon and waits until `mountpoint -q` succeeds; leaves the
# seconds from launch to ready in $READY.
mount_store() {
  local t0 t1 deadline
  MOUNTED=1
  t0=$(date +%s%N)
  deadline=$(( t0 + MOUNT_WAIT * 1000000000 ))
  "$AFS" init --store "$STORE" --quiet >/dev/null
  "$AFS" mount --store "$STORE" "$MNT" --quiet-period 3600 --foreground 2>>"$DLOG" &
  DAEMON=$!
  until mountpoint -q "$MNT"; do
    kill -0 "$DAEMON" 2>/dev/null || die "the daemon exited before the mount was ready (see $DLOG)"
    (( $(date +%s%N) < deadline )) || die "the mount was not ready after $MOUNT_WAIT s (see $DLOG)"
    sleep 0.002
  done
  t1=$(date +%s%N)
  READY=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
}

unmount_store() {
  if mountpoint -q "$MNT"; then fusermount3 -u "$MNT"; fi
  if [[ -n $DAEMON ]]; then wait "$DAEMON" 2>/dev/null || true; fi
  DAEMON=
  MOUNTED=0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if (( MOUNTED )) && mountpoint -q "$MNT"; then
    fusermount3 -u "$MNT" || {
      log "fusermount3 -u failed; detaching $MNT lazily"
      fusermount3 -u -z "$MNT" || true
    }
  fi
  if [[ -n $DAEMON ]]; then wait "$DAEMON" 2>/dev/null || true; fi
  (( rc == 0 )) || log "failed (exit $rc); daemon log: $DLOG"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The daemon's pid: the background mount process itself when it is artifactfs, else its
# artifactfs child; cross-checked against the pid the mount reports on its root.
daemon_pid() {
  local pid=$DAEMON reported child
  if [[ $(readlink "/proc/$pid/exe") != "$AFS" ]]; then
    pid=
    for child in $(pgrep -P "$DAEMON"); do
      if [[ $(readlink "/proc/$child/exe") == "$AFS" ]]; then pid=$child; break; fi
    done
  fi
  [[ -n $pid ]] || die "cannot find the daemon of the mount started as pid $DAEMON"
  if command -v getfattr >/dev/null; then
    reported=$(getfattr --only-values -n user.artifactfs.pid "$MNT" 2>/dev/null) || true
    [[ -z $reported || $reported == "$pid" ]] ||
      log "note: the mount reports daemon pid $reported, the launched process is $pid"
  fi
  echo "$pid"
}

# rss FIELD: VmRSS or VmHWM of the daemon, in MiB.
rss() {
  awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$(daemon_pid)/status"
}

# ---------------------------------------------------------------------------- timing

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# time_cmd CMD...: runs CMD in this shell and leaves its wall time in seconds in $ELAPSED.
time_cmd() {
  local t0 t1
  t0=$(date +%s%N)
  "$@"
  t1=$(date +%s%N)
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
}

median() {
  printf '%s\n' "$@" | awk 'NF' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() {  # ratio A B -> A/B with two decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f\n", a / b }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
fsize() { if [[ -e $1 ]]; then stat -c %s "$1"; else echo 0; fi; }

declare -A FIG   # figures for the final table

# ---------------------------------------------------------------------------- 1. data

FOLDERS=$(( (FILES + PER_FOLDER - 1) / PER_FOLDER ))
log "1. making $FILES files of a few bytes in $FOLDERS folders under $SRC"
time_cmd python3 - "$SRC" "$FILES" "$PER_FOLDER" <<'EOF'
import os, sys
root, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d, f = divmod(i, per)
    folder = os.path.join(root, f"d{d:05d}")
    if f == 0:
        os.mkdir(folder)
    # Distinct content: no deduplication shortcut.
    with open(os.path.join(folder, f"f{f:05d}.txt"), "w") as out:
        out.write(f"{d}/{f}\n")
EOF
FIG[gen]=$ELAPSED
sync
log "   made in $ELAPSED s"

# ---------------------------------------------------------------------------- 2. populate

log "2. populating the store through the mount: cp -r in batches of $BATCH folders, then one seal"
mount_store
mkdir "$MNT/projects/big"
IN=$MNT/projects/big/incoming
mkdir "$IN/data"
mapfile -t DIRS < <(find "$SRC" -mindepth 1 -maxdepth 1 -type d | sort)
cp_total=0
for (( i = 0; i < ${#DIRS[@]}; i += BATCH )); do
  time_cmd cp -r "${DIRS[@]:i:BATCH}" "$IN/data/"
  cp_total=$(awk -v a="$cp_total" -v b="$ELAPSED" 'BEGIN { printf "%.3f", a + b }')
  done_folders=$(( i + BATCH < ${#DIRS[@]} ? i + BATCH : ${#DIRS[@]} ))
  log "   cp -r folders $((i + 1))-$done_folders of ${#DIRS[@]}: $ELAPSED s (rss $(rss VmRSS) MiB)"
done
FIG[cp]=$cp_total
seal_big() { BIG_RUN=$("$AFS" seal "$IN"); }
time_cmd seal_big
FIG[seal_big]=$ELAPSED
[[ -n $BIG_RUN ]] || die "artifactfs seal printed no run id"
log "   sealed run $BIG_RUN in $ELAPSED s (cp -r total $cp_total s)"
FIG[rss_populated]=$(rss VmRSS)
FIG[hwm_populated]=$(rss VmHWM)
RUN_DIR=$MNT/projects/big/runs/$BIG_RUN
LATEST_DIR=$MNT/projects/big/latest
unmount_store

# ---------------------------------------------------------------------------- 3. catalog

# catalog_bytes: catalog.sqlite and its -wal and -shm, in bytes.
CATALOG=$(find "$STORE" -maxdepth 2 -name 'catalog.sqlite' -print -quit)
[[ -n $CATALOG ]] || CATALOG=$(find "$STORE" -maxdepth 2 -name '*.sqlite' -print -quit)
[[ -n $CATALOG ]] || die "no catalog (*.sqlite) found under $STORE"
catalog_bytes() { echo $(( $(fsize "$CATALOG") + $(fsize "$CATALOG-wal") + $(fsize "$CATALOG-shm") )); }
log "3. catalog $CATALOG: main $(fsize "$CATALOG") B, -wal $(fsize "$CATALOG-wal") B, -shm $(fsize "$CATALOG-shm") B"
FIG[cat_raw]=$(catalog_bytes)
FIG[cat_wal]=$(fsize "$CATALOG-wal")
if (( HAVE_SQLITE )); then
  sqlite3 "$CATALOG" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
  FIG[cat_ckpt]=$(catalog_bytes)
  log "   after wal_checkpoint(TRUNCATE): $(fsize "$CATALOG") B + -wal $(fsize "$CATALOG-wal") B"
else
  FIG[cat_ckpt]=n/a
fi

# ---------------------------------------------------------------------------- 4. mount ready

log "4. mount-ready time of the populated store, $MOUNT_REPS x cold and warm"
MR_COLD=() MR_WARM=()
for (( r = 1; r <= MOUNT_REPS; r++ )); do
  if (( CAN_DROP )); then
    drop_caches
    mount_store; MR_COLD+=("$READY")
    if (( r == 1 )); then FIG[rss_mount]=$(rss VmRSS); fi
    log "   cold: $READY s"
    unmount_store
  fi
  # Warm: the store's files are in the page cache, the previous daemon just exited.
  mount_store; MR_WARM+=("$READY")
  [[ -n ${FIG[rss_mount]:-} ]] || FIG[rss_mount]=$(rss VmRSS)
  log "   warm: $READY s"
  unmount_store
done
FIG[mount_cold]=$(median "${MR_COLD[@]}")
FIG[mount_warm]=$(median "${MR_WARM[@]}")

# ---------------------------------------------------------------------------- 5. RSS after find

log "5. daemon RSS after mount and after find over the whole mount"
if (( CAN_DROP )); then drop_caches; fi
mount_store
FIG[rss_mount2]=$(rss VmRSS)
count_find() { FIND_ENTRIES=$(find "$MNT" | wc -l); }
time_cmd count_find
FIG[find]=$ELAPSED
FIG[find_entries]=$FIND_ENTRIES
FIG[rss_find]=$(rss VmRSS)
FIG[hwm_find]=$(rss VmHWM)
log "   find: $FIND_ENTRIES entries in $ELAPSED s; RSS $(rss VmRSS) MiB (peak $(rss VmHWM) MiB)"
FILES_IN_RUN=$(find "$RUN_DIR/raw_source" -type f | wc -l)   # beside it: the virtual .run.json
(( FILES_IN_RUN >= FILES )) || die "run $BIG_RUN holds $FILES_IN_RUN files, not $FILES"
unmount_store

# ---------------------------------------------------------------------------- 6. ls -lR

list_tree() { ls -lR "$1" >/dev/null; }
log "6. ls -lR of the run's folder and of latest/, cold then warm"
if (( CAN_DROP )); then
  drop_caches; time_cmd list_tree "$SRC"; FIG[ls_native_cold]=$ELAPSED
  log "   native source tree, cold: $ELAPSED s"
fi
list_tree "$SRC"; time_cmd list_tree "$SRC"; FIG[ls_native_warm]=$ELAPSED
log "   native source tree, warm: $ELAPSED s"
for tree in run latest; do
  dir=$RUN_DIR; [[ $tree == latest ]] && dir=$LATEST_DIR
  if (( CAN_DROP )); then
    # The daemon keeps caches of its own that drop_caches cannot reach: remount first.
    drop_caches
    mount_store
    time_cmd list_tree "$dir"; FIG[ls_${tree}_cold]=$ELAPSED
    log "   $tree, cold: $ELAPSED s (rss $(rss VmRSS) MiB)"
  else
    mount_store
    list_tree "$dir"
  fi
  time_cmd list_tree "$dir"; FIG[ls_${tree}_warm]=$ELAPSED
  log "   $tree, warm: $ELAPSED s (rss $(rss VmRSS) MiB)"
  unmount_store
done

# ---------------------------------------------------------------------------- 7. seals

log "7. seal of one small file: into a project with 1 run and into one with $RUNS runs"
mount_store
mkdir "$MNT/projects/many"
made=0
seal_into() {  # seal_into PROJECT: one new small file, sealed
  local in=$MNT/projects/$1/incoming
  made=$((made + 1))
  printf '%s\n' "$made" > "$in/f$made.txt"
  "$AFS" seal "$in" >/dev/null
}
ms_of() {  # ms_of CMD...: wall time of CMD in ms, in $MS
  local t0 t1
  t0=$(date +%s%N); "$@"; t1=$(date +%s%N)
  MS=$(( (t1 - t0) / 1000000 ))
}
t_start=$(date +%s)
for (( k = 1; k <= RUNS; k++ )); do
  seal_into many
  if (( k % 1000 == 0 )); then log "   $k runs in projects/many ($(( $(date +%s) - t_start )) s)"; fi
done
FIG[make_runs]=$(( $(date +%s) - t_start ))
SEAL_ONE=() SEAL_MANY=()
for (( s = 1; s <= SAMPLES; s++ )); do
  mkdir "$MNT/projects/one$s"
  seal_into "one$s"                                # its 1 run
  ms_of seal_into "one$s"; SEAL_ONE+=("$MS")       # a seal into a project with 1 run
  ms_of seal_into many; SEAL_MANY+=("$MS")         # ... and with RUNS + s - 1 runs
done
FIG[seal_one]=$(median "${SEAL_ONE[@]}")
FIG[seal_many]=$(median "${SEAL_MANY[@]}")
log "   1 run: ${SEAL_ONE[*]} ms; $RUNS runs: ${SEAL_MANY[*]} ms"
FIG[rss_end]=$(rss VmRSS)
FIG[hwm_end]=$(rss VmHWM)
unmount_store
FIG[cat_end]=$(catalog_bytes)
if (( HAVE_SQLITE )); then
  sqlite3 "$CATALOG" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
  FIG[cat_end]=$(catalog_bytes)
fi

# ---------------------------------------------------------------------------- 8. verify

log "8. artifactfs verify --store (unmounted$( (( CAN_DROP )) && echo ', page cache dropped'))"
if (( CAN_DROP )); then drop_caches; fi
VERIFY_RC=0
run_verify() { VERIFY_OUT=$("$AFS" verify --store "$STORE" 2>&1) || VERIFY_RC=$?; }
time_cmd run_verify
FIG[verify]=$ELAPSED
log "   $ELAPSED s, exit $VERIFY_RC: $(tail -1 <<<"$VERIFY_OUT")"

# ---------------------------------------------------------------------------- 9. report

# The big run, the many-runs project (RUNS + SAMPLES files) and SAMPLES projects of 2 files;
# verify's count of file references when it printed one.
CATALOGUED=$(( FILES_IN_RUN + RUNS + 3 * SAMPLES ))
if [[ $VERIFY_OUT =~ ([0-9]+)\ file\ references ]]; then CATALOGUED=${BASH_REMATCH[1]}; fi
per_file() { awk -v b="$1" -v n="$2" 'BEGIN { if (b == "n/a") print "n/a"; else printf "%.0f", b / n }'; }
sized_ls_ratio() { ratio "${FIG[ls_latest_$1]:-n/a}" "${FIG[ls_run_$1]:-n/a}"; }

echo
echo "artifactfs at scale, $(date -u +%Y-%m-%dT%H:%MZ): $FILES_IN_RUN files in one run ($FOLDERS folders" \
  "of $PER_FOLDER), a project of $RUNS runs"
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)," \
  "disk $(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $1 " (" $2 ")" }'); binary $AFS"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
FMT='| %-52s | %14s | %-22s |\n'
# shellcheck disable=SC2059  # the format is ours
printf "$FMT" figure value "target (SPEC §8)"
# shellcheck disable=SC2059
printf "$FMT" "$(printf -- '-%.0s' {1..52})" "-------------:" "----------------------"
# shellcheck disable=SC2059
row() { printf "$FMT" "$1" "$2" "$3"; }
row "daemon RSS after mount (MiB)" "${FIG[rss_mount2]}" "< 200"
row "daemon RSS after find MNT, $FIND_ENTRIES entries (MiB)" "${FIG[rss_find]}" "< 200"
row "daemon peak RSS (VmHWM) after find (MiB)" "${FIG[hwm_find]}" "-"
row "mount ready, cold (s, median of $MOUNT_REPS)" "${FIG[mount_cold]}" "< 1"
row "mount ready, warm (s, median of $MOUNT_REPS)" "${FIG[mount_warm]}" "< 1"
row "ls -lR runs/<id>/, cold (s)" "${FIG[ls_run_cold]:-n/a}" "-"
row "ls -lR latest/, cold (s)" "${FIG[ls_latest_cold]:-n/a}" "-"
row "  latest/ / run, cold" "$(sized_ls_ratio cold)" "<= 3"
row "ls -lR runs/<id>/, warm (s)" "${FIG[ls_run_warm]}" "-"
row "ls -lR latest/, warm (s)" "${FIG[ls_latest_warm]}" "-"
row "  latest/ / run, warm" "$(sized_ls_ratio warm)" "<= 3"
row "ls -lR native source tree, cold / warm (s)" "${FIG[ls_native_cold]:-n/a} / ${FIG[ls_native_warm]}" "-"
row "  run / native, cold / warm" "$(ratio "${FIG[ls_run_cold]:-n/a}" "${FIG[ls_native_cold]:-n/a}") / $(ratio "${FIG[ls_run_warm]}" "${FIG[ls_native_warm]}")" "(<= 3 / <= 1.5 at 10k)"
row "seal of 1 file, project with 1 run (ms, median of $SAMPLES)" "${FIG[seal_one]}" "-"
row "seal of 1 file, project with $RUNS runs (ms, median)" "${FIG[seal_many]}" "-"
row "  $RUNS runs / 1 run" "$(ratio "${FIG[seal_many]}" "${FIG[seal_one]}")" "<= 1.5"
row "verify --store, unmounted (s)" "${FIG[verify]}" "-"
row "catalog B/file after populate, as left (incl. -wal)" "$(per_file "${FIG[cat_raw]}" "$FILES_IN_RUN")" "<= 300"
row "catalog B/file after populate, checkpointed" "$(per_file "${FIG[cat_ckpt]}" "$FILES_IN_RUN")" "<= 300"
row "catalog B/file at the end ($CATALOGUED files)" "$(per_file "${FIG[cat_end]}" "$CATALOGUED")" "<= 300"
echo
echo "phases (s): make source ${FIG[gen]}, cp -r into incoming/ ${FIG[cp]}, seal of $FILES_IN_RUN files" \
  "${FIG[seal_big]}, find MNT ${FIG[find]}, make $RUNS runs ${FIG[make_runs]}"
echo "catalog after populate: $(mib "${FIG[cat_raw]}") MiB as left by the daemon (-wal $(mib "${FIG[cat_wal]}") MiB)," \
  "$( [[ ${FIG[cat_ckpt]} == n/a ]] && echo n/a || mib "${FIG[cat_ckpt]}") MiB checkpointed; at the end $(mib "${FIG[cat_end]}") MiB"
echo "daemon RSS (MiB): after populate ${FIG[rss_populated]} (peak ${FIG[hwm_populated]}), first mount ${FIG[rss_mount]}," \
  "after seals ${FIG[rss_end]} (peak ${FIG[hwm_end]})"
echo "mount ready samples (s): cold ${MR_COLD[*]:-n/a}; warm ${MR_WARM[*]}"
echo "seal samples (ms): 1 run ${SEAL_ONE[*]}; $RUNS runs ${SEAL_MANY[*]}"
echo "verify (exit $VERIFY_RC): $(tail -1 <<<"$VERIFY_OUT")"
