#!/usr/bin/env bash
# Makes the default busybox image from the busybox bundle's rootfs (Debian's busybox-static,
# see scripts/mkbundle.sh) and imports it into a berth data root as busybox:latest.
#   scripts/mkbusybox-image.sh BERTH BUNDLE [ROOT]
set -euo pipefail
berth=$1 bundle=$2 root=${3:-}
args=()
[ -n "$root" ] && args=(--root "$root")
tar -C "$bundle/rootfs" --numeric-owner -c . |
  "$berth" "${args[@]}" import -c 'CMD ["sh"]' -m "busybox from Debian's busybox-static" - busybox:latest >/dev/null
