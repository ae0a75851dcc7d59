#!/usr/bin/env bash
# Makes the default OCI bundle: a rootfs with Debian's busybox-static (the binary taken from
# the .deb, `busybox --install -s` for the applets) and the config.json of `berth-runtime spec`,
# set to run a non-interactive command.
set -euo pipefail
out=${1:?usage: mkbundle.sh DIR BERTH-RUNTIME}
rt=$(realpath -s "${2:?usage: mkbundle.sh DIR BERTH-RUNTIME}")
[ -f "$out/config.json" ] && [ -x "$out/rootfs/bin/busybox" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download busybox-static >/dev/null 2>&1) || {
  # apt's lists may be missing on a fresh machine
  apt-get update -qq && (cd "$tmp" && apt-get download busybox-static >/dev/null)
}
dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x"
rm -rf "$out"
mkdir -p "$out/rootfs"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,root,var}
cp "$tmp/x/bin/busybox" "$out/rootfs/bin/busybox"
chroot "$out/rootfs" /bin/busybox --install -s /bin
chmod 1777 "$out/rootfs/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' > "$out/rootfs/etc/passwd"
echo 'root:x:0:' > "$out/rootfs/etc/group"
(cd "$out" && "$rt" spec)
jq '.process.terminal=false | .process.args=["sh","-c","echo hello from berth"]' "$out/config.json" > "$out/config.json.new"
mv "$out/config.json.new" "$out/config.json"
echo "bundle ready: $out"
