#!/usr/bin/env bash
# First README command: install what is missing, build a release binary, and mount the
# embedded default store at $ARTIFACTFS_MOUNT (default ~/artifactfs). Returns once the mount
# is ready. Run it again at any time: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash mount-scripts/install-deps.sh
swift build -c release
bin="$PWD/.build/release/artifactfs"

mnt="${ARTIFACTFS_MOUNT:-$HOME/artifactfs}"
mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
  echo "artifactfs: $mnt is already mounted"
else
  "$bin" mount "$mnt"
fi
echo "artifactfs: binary at $bin (copy it onto PATH: install -m755 $bin /usr/local/bin/)"
echo "artifactfs: try  mkdir $mnt/projects/demo && cp -a SOME/FOLDER/. $mnt/projects/demo/incoming/"
