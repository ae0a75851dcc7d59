#!/usr/bin/env bash
# Installs what berth needs on a fresh Debian machine (root): the C toolchain bits for the cgo
# constructor and static libseccomp, busybox-static for the test bundle, and the Go modules.
# `install-deps.sh engines` also installs the engines the interop tests drive; `bench` the peers.
set -euo pipefail
want=(gcc libc6-dev make libseccomp-dev busybox-static jq procps iproute2 nftables docker-registry)
case "${1:-}" in
  engines) want+=(docker.io podman containerd crun runc skopeo) ;;
  bench) want+=(runc crun hyperfine time strace podman skopeo debootstrap curl) ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as docker.io would start their system service on install; the tests start
  # their own daemons on private sockets and must not leave one running that owns the host's
  # bridge and firewall. policy-rc.d is Debian's switch for that.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cd "$(dirname "$0")/.."
go mod download
# The linter `make lint` runs, pinned.
[ -x "$(go env GOPATH)/bin/staticcheck" ] || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
