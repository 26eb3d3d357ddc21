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

# The quick start types `artifactfs`: put the binary on PATH (root: /usr/local/bin, else
# ~/.local/bin).
if [[ $(id -u) -eq 0 ]]; then dest=/usr/local/bin; else dest="$HOME/.local/bin"; mkdir -p "$dest"; fi
install -m755 "$bin" "$dest/artifactfs"
bin="$dest/artifactfs"

# The embedded default store (ARTIFACTFS_STORE, else ~/.local/share/artifactfs): init
# leaves an existing store as it is.
"$bin" init --quiet

mnt="${ARTIFACTFS_MOUNT:-$HOME/artifactfs}"
mkdir -p "$mnt"
if mountpoint -q "$mnt" && ls "$mnt" >/dev/null 2>&1; then
  echo "artifactfs: $mnt is already mounted"
else
  "$bin" mount "$mnt"
fi
echo "artifactfs: installed $bin$(command -v artifactfs >/dev/null || echo " (add $dest to PATH)")"
echo "artifactfs: try  mkdir $mnt/projects/demo && cp -a SOME/FOLDER/. $mnt/projects/demo/incoming/"
