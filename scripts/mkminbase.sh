#!/usr/bin/env bash
# Makes the Debian test image: `debootstrap --variant=minbase bookworm` from the apt mirror this
# machine uses, packed with numeric owners and xattrs into OUT (a tar) and OUT.gz. Slow (about
# 1.5 minutes), so the result is cached: nothing is done when OUT exists.
set -euo pipefail
minbase=$(realpath -m "${1:?usage: mkminbase.sh OUT.tar}")
log() { printf '%s\n' "$*" >&2; }
die() { log "mkminbase: $*"; exit 1; }
command -v debootstrap >/dev/null || bash "$(dirname "$0")/install-deps.sh" bench
bootstrap_dir=
umount_under() { # unmount everything mounted at or below $1, deepest first
  local m
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
  if [ -n "${bootstrap_dir:-}" ]; then umount_under "$bootstrap_dir"; rm -rf "$bootstrap_dir"; fi
}
trap cleanup EXIT
apt_mirror() { # the first deb mirror that serves bookworm, from this machine's apt sources
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i+1) == "bookworm") { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = "" }
      { types = ""; suites = ""; uri = ""; enabled = "yes"; n = split($0, L, "\n")
        for (j = 1; j <= n; j++) {
          if (L[j] ~ /^Types:/)   types = " " substr(L[j], 7) " "
          if (L[j] ~ /^Suites:/)  suites = " " substr(L[j], 8) " "
          if (L[j] ~ /^Enabled:/) enabled = substr(L[j], 9)
          if (L[j] ~ /^URIs:/)    { split(substr(L[j], 6), u, " "); uri = u[1] } }
        gsub(/[ \t]+/, " ", types); gsub(/[ \t]+/, " ", suites); gsub(/[ \t]/, "", enabled)
        if (types ~ / deb / && suites ~ / bookworm / && enabled != "no" && uri != "") { print uri; exit } }' "$f"
  done
}
if [ ! -s "$minbase" ]; then
  mirror=$(apt_mirror | head -1)
  [ -n "$mirror" ] || die "no apt source for bookworm found in /etc/apt/sources.list{,.d/*}"
  log "building $minbase: debootstrap --variant=minbase bookworm from $mirror (slow; cached after)"
  mkdir -p "$(dirname "$minbase")"
  bootstrap_dir=$(mktemp -d "$(dirname "$minbase")/minbase.XXXXXX")
  debootstrap --variant=minbase bookworm "$bootstrap_dir/rootfs" "$mirror" > "$bootstrap_dir/log" 2>&1 ||
    { tail -20 "$bootstrap_dir/log" >&2; die "debootstrap failed"; }
  umount_under "$bootstrap_dir/rootfs"
  tar --numeric-owner --xattrs --xattrs-include='*' --sort=name -C "$bootstrap_dir/rootfs" \
    -cf "$bootstrap_dir/minbase.tar" .
  mv "$bootstrap_dir/minbase.tar" "$minbase"
  rm -rf "$bootstrap_dir"; bootstrap_dir=
fi
minbase_gz=$minbase.gz
if [ ! -s "$minbase_gz" ] || [ "$minbase_gz" -ot "$minbase" ]; then
  gzip -n -6 -c "$minbase" > "$minbase_gz.tmp" && mv "$minbase_gz.tmp" "$minbase_gz"
fi
