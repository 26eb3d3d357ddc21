#!/usr/bin/env bash
# Second README command, and what CI runs: install what is missing, build, and run every
# test — unit tests and the integration tests that mount real filesystems through /dev/fuse.
# Needs root (or a user allowed to mount FUSE with allow_other) and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash mount-scripts/install-deps.sh
swift build -c release --build-tests
export ARTIFACTFS_BIN="$PWD/.build/release/artifactfs"
swift test -c release --skip-build
