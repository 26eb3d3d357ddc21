#!/usr/bin/env bash
# Installs what artifactfs needs to build, test and benchmark on Debian, and nothing that
# is already there. Safe to run again. Used by the README's commands and by .ci/run.
set -euo pipefail

need=()
for pkg in libfuse3-dev fuse3 libsqlite3-dev sqlite3 libxxhash-dev pkg-config attr rsync bindfs bubblewrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "artifactfs: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "artifactfs: swift is at /opt/swift/usr/bin; add it to PATH" >&2
  else
    echo "artifactfs: the Swift toolchain (6.x) is required: https://www.swift.org/install/linux/" >&2
  fi
  exit 1
fi

if [ ! -e /dev/fuse ]; then
  echo "artifactfs: /dev/fuse is missing; load the fuse module (modprobe fuse)" >&2
  exit 1
fi
