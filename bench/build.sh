#!/usr/bin/env bash
# Image builds: `berth build` vs `podman build` vs `docker build` (Debian's dockerd, classic
# builder and BuildKit), same machine, same run, same imported Debian image, interleaved
# (DESIGN.md section 5, rows "6-step Dockerfile on the Debian image, cold" and "fully cached
# rebuild"; issue 6, "Benchmarks").
#
#   make build minbase && bash bench/build.sh
#   BENCH_RUNS=11 BENCH_DOCKER=0 bash bench/build.sh
#
# Environment:
#   BENCH_RUNS      measured rounds (default 7)
#   BENCH_WARMUP    warm-up rounds, not counted (default 1)
#   BENCH_FILES     files in the context's src/ (default 300: 12 directories, 0.3-3 KiB each)
#   BENCH_PODMAN    0 to leave podman out
#   BENCH_DOCKER    0 to leave dockerd out (both of its builders)
#   BENCH_BUILDKIT  0 to leave docker's BuildKit out (its classic builder is still measured)
#   BERTH           berth binary (default bin/berth; berth-monitor, berth-runtime and
#                   berth-init must be beside it). The four are copied into the temp dir at
#                   start, so a rebuild of bin/ during the run does not mix builds.
#   BENCH_MINBASE   the Debian rootfs (default _build/minbase.tar.gz from `make minbase`,
#                   gunzipped into the temp dir; a plain .tar is used as it is)
#
# The image: the Debian minbase rootfs imported into each engine as bench/debian:1 with
# CMD ["bash"] (`berth import`, `podman import`, `docker import` of the same tar).
# The Dockerfile: bench/build/Dockerfile, FROM bench/debian:1 and six steps (ENV, WORKDIR,
# COPY of src/, a RUN that writes 200 files, a RUN that reads every copied file, CMD). The
# context is generated in the temp dir: that Dockerfile and src/ with BENCH_FILES small files.
#
# The engines, each with its own state in one temp dir (as bench/engine.sh):
#   berth     `berth --root <tmp>/berth build --network none -t bench/out:1 CTX`; its runtime
#             state in /run/berth/rt-<hash of the root>, removed at exit with the network
#             run dir, bridge and nftables table of that root if anything made them.
#   podman    `podman ... build --network none --cgroup-parent /<bench>/podman-build -t
#             bench/out:1 CTX` (buildah runs each RUN container in that cgroup itself):
#             own root/runroot/tmpdir, containers.conf, storage.conf (overlay, else vfs),
#             cgroupfs, file events and locks; buildah inside, --layers (podman's default),
#             OCI image format (podman's default), its default OCI runtime (crun).
#   docker    Debian's dockerd 20.10 with its own socket, data root, exec root, containerd
#             namespace and cgroup parent, `--bridge=none --iptables=false`; Debian's docker
#             20.10 client (/usr/bin/docker): `DOCKER_BUILDKIT=0 docker build --network none
#             -t bench/out:1 CTX` (docker-classic) and `DOCKER_BUILDKIT=1 docker build
#             --progress plain --network none ...` (docker-buildkit, the BuildKit built into
#             dockerd), each measured as an engine of its own. dockerd runs for the whole
#             measurement.
#
# What is measured, BENCH_WARMUP + BENCH_RUNS rounds; in each round every engine in turn (the
# order rotating each round) does three builds, each timed as the whole CLI command (bash
# EPOCHREALTIME, fork to exit), output to a log file:
#   cold     after the engine's build cache and the result image are removed (outside the
#            clock): berth: rm -rf <root>/build/cache, `rmi bench/out:1`, `image prune -f`;
#            podman: `rmi`, `image prune -f`; docker: `rmi`, `image prune -f`, `builder
#            prune -af`; what a prune leaves is removed by ID. Every engine's image list must then
#            be back to bench/debian:1 alone.
#   cached   the same build again, unchanged: its image ID is compared with the cold build's
#            (a note when they differ).
#   touched  one copied file's content changed (a line appended), then the build again: the
#            image ID must differ.
# Before every timed command the script runs `sync` (outside the clock): on this shared disk a
# build's fsyncs otherwise wait for the writeback of whatever the engine before it wrote.
# Every build must exit 0. The first round of each engine checks that the built image runs:
# `run --rm --network none bench/out:1` must print the greeting and the files/sha256 summary
# computed on the host. Then medians, min, max; ratios berth/engine of the medians, the median
# of per-round ratios, the rounds berth was faster in. Two floors, timed in the same rounds for
# information: `berth images -q` (the CLI's start-up and opening the store) and hashing the
# context (`tar -c src | sha256sum`).
# Targets (issue 6): cold at most the best peer's median; fully cached under 100 ms and below
# every peer's median.
#
# Everything goes into one temp dir that is removed at exit, even when interrupted:
# containers removed, dockerd and its containerd stopped by PID, processes naming the temp
# dir killed by PID, mounts under it unmounted, the cgroup parent removed, berth's
# /run/berth/rt-* and net-* dirs of its root, bridge and nftables table (if made), iptables
# chains and rules the peers added (DOCKER*, CNI-*, NETAVARK* chains new since the start), and
# host paths the engines created on their own (/run/docker, /var/lib/containers/cache, ...).
# `ip -br link` and `nft list tables` are compared before and after: anything new is reported.
#
# crun (podman's runtime) refuses a cgroup v1/v2 hybrid host whose cgroup2 mount lists a
# controller: as in bench/engine.sh, the script re-runs itself in a private mount namespace
# with an empty file bind-mounted over /sys/fs/cgroup/unified/cgroup.controllers; all engines
# run in it alike. The output says so.
set -euo pipefail
# shellcheck disable=SC2317 # (shellcheck takes the functions in this { } group for unreachable)
{ # the whole script is one compound command, parsed before it runs: an edit of this file
  # during a run does not reach the running copy
self=$(realpath "$0")
cd "$(dirname "$self")/.."
repo=$PWD

die() { echo "bench/build.sh: $*" >&2; exit 1; }
log() { echo "bench/build.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"

runs=${BENCH_RUNS:-7}
warmup=${BENCH_WARMUP:-1}
nfiles=${BENCH_FILES:-300}
use_podman=1 use_docker=1 use_buildkit=1
[ "${BENCH_PODMAN:-1}" = 0 ] && use_podman=0
[ "${BENCH_DOCKER:-1}" = 0 ] && use_docker=0
[ "${BENCH_BUILDKIT:-1}" = 0 ] && use_buildkit=0
[ "$use_docker" = 1 ] || use_buildkit=0
berth_src=$(realpath -s "${BERTH:-$repo/bin/berth}")
berth=$berth_src # until the copy below
minbase=${BENCH_MINBASE:-$repo/_build/minbase.tar.gz}
[ -e "$minbase" ] || [ -n "${BENCH_MINBASE:-}" ] || minbase=$repo/_build/minbase.tar
minbase=$(realpath -m "$minbase")
dockerfile=$repo/bench/build/Dockerfile
base=bench/debian:1
out=bench/out:1
greeting="built by bench/build.sh" # the Dockerfile's ENV BENCH_GREETING

cgroup_mode() {
  case "$(stat -fc %T /sys/fs/cgroup)" in
    cgroup2fs) echo unified ;;
    *) if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo hybrid; else echo legacy; fi ;;
  esac
}

# --- the crun hybrid-mode workaround (see bench/engine.sh): re-run in a private mount namespace
ctrl=/sys/fs/cgroup/unified/cgroup.controllers
if [ -z "${BENCH_PRIVATE_NS:-}" ] && [ "$use_podman" = 1 ] && [ "$(cgroup_mode)" = hybrid ] &&
  [ -n "$(tr -d "[:space:]" < "$ctrl")" ]; then
  BENCH_PRIVATE_NS="$(tr '\n' ' ' < "$ctrl")" exec unshare --mount --propagation private bash "$self" "$@"
fi

# --- prerequisites
need=()
if [ "$use_podman" = 1 ]; then { command -v podman >/dev/null && command -v conmon >/dev/null; } || need+=(podman); fi
if [ "$use_docker" = 1 ]; then { command -v dockerd >/dev/null && [ -x /usr/bin/docker ]; } || need+=(docker.io); fi
if [ ${#need[@]} -gt 0 ]; then
  set=bench; [ "$use_docker" = 1 ] && set=engines # `engines` has docker.io, podman and runc
  log "installing what is missing (${need[*]}): scripts/install-deps.sh $set"
  bash scripts/install-deps.sh "$set"
fi
for b in "$berth_src" "$(dirname "$berth_src")"/berth-{monitor,runtime,init}; do
  [ -x "$b" ] || die "$b missing: run make build"
done
[ -f "$minbase" ] || die "$minbase missing: run make minbase"
[ -f "$dockerfile" ] || die "$dockerfile missing"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ $warmup =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number"
[[ $nfiles =~ ^[1-9][0-9]*$ ]] || die "BENCH_FILES must be a positive integer"
have_ipt=0; command -v iptables-save >/dev/null && command -v iptables-restore >/dev/null && have_ipt=1

# --- state, and what cleanup must undo
tmp=$(mktemp -d /tmp/berth-bb.XXXXXX)
bench_id=${tmp##*/}          # cgroup parent (podman, docker) and containerd namespace
B=$tmp/berth                 # berth's data root
berth_rt=/run/berth/rt-$(printf %s "$B" | sha256sum | cut -c1-12)
berth_hash=$(printf %s "$B" | sha256sum | cut -c1-8) # berth's per-root network names
berth_br=berth-${berth_hash:0:6} berth_table=berth-$berth_hash berth_netrun=/run/berth/net-$berth_hash
P=$tmp/podman D=$tmp/docker
ctx=$tmp/context
dk_pid='' dk_sock=$D/d.sock dk_ns=$bench_id
host_paths=(/var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers
  /run/containers /run/libpod /run/docker/plugins /run/docker/netns /run/docker /run/containerd/s
  /run/containerd /etc/docker/key.json /run/crun /run/runc /run/berth /run/netns /run/cni
  /var/lib/cni/networks /var/lib/cni/results /var/lib/cni)
host_existed=()
for p in "${host_paths[@]}"; do
  if [ -e "$p" ] || [ -L "$p" ]; then host_existed+=(1); else host_existed+=(0); fi
done
links_of() { ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort; }
nft_tables() { nft list tables 2>/dev/null | sort || true; }
links_before=$(links_of)
nft_before=$(nft_tables)
if [ "$have_ipt" = 1 ]; then
  iptables-save > "$tmp/ipt4.before" 2>/dev/null || :
  ip6tables-save > "$tmp/ipt6.before" 2>/dev/null || :
fi

umount_under() { # unmount everything mounted at or below $1, deepest first
  local m
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
pids_of() { # NAME SUBSTR: processes whose comm or argv[0] starts with NAME, command line has SUBSTR
  local p c comm a0
  for p in /proc/[0-9]*; do
    read -r comm 2>/dev/null < "$p/comm" || continue
    c=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
    a0=${c%% *}; a0=${a0##*/}
    [[ $comm == "$1"* || $a0 == "$1"* ]] || continue
    [[ $c == *"$2"* ]] && echo "${p#/proc/}"
  done
  return 0
}
descendants() { # PIDs... -> those PIDs and all their descendants
  ps -eo pid=,ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) { want[r[i]] = 1; print r[i] } }
    { kids[$2] = kids[$2] " " $1 }
    END { for (i = 1; i <= n; i++) q[i] = r[i]; h = 1
      while (h <= n) { split(kids[q[h]], k, " "); h++
        for (j in k) if (!(k[j] in want)) { want[k[j]] = 1; q[++n] = k[j]; print k[j] } } }'
}
kill_mentioning() { # kill, by PID, every process whose command line names $1, and descendants
  local p c hit=()
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    { [ "$p" = $$ ] || [ "$p" = "$BASHPID" ]; } && continue
    c=$(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline") || continue
    if [[ $c == *"$1"* ]]; then log "cleanup: killing leftover process $p: ${c:0:120}"; hit+=("$p"); fi
  done
  [ ${#hit[@]} -gt 0 ] || return 0
  for p in $(descendants "${hit[@]}"); do kill -9 "$p" 2>/dev/null || true; done
}

bt() { "$berth" --root "$B" "$@"; }
pm() {
  CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf TMPDIR=$P/vartmp \
    podman --root "$P/r" --runroot "$P/rr" --tmpdir "$P/t" --volumepath "$P/v" \
    --network-config-dir "$P/net" --storage-driver "$podman_driver" --cgroup-manager cgroupfs \
    --events-backend file "$@"
}
dk() { DOCKER_CONFIG=$D/cli /usr/bin/docker -H "unix://$dk_sock" "$@"; }

dk_start() { # dockerd (and so its containerd), ready when the API answers
  # its own session: a Ctrl-C of the bench must not reach it, cleanup still needs it
  setsid dockerd --host "unix://$dk_sock" --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/d.pid" \
    --config-file "$D/daemon.json" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    --storage-driver "$dk_driver" --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$bench_id" \
    --containerd-namespace "$dk_ns" --containerd-plugins-namespace "$dk_ns-plugins" >>"$D/dockerd.log" 2>&1 &
  dk_pid=$!
  for _ in $(seq 600); do
    dk version >/dev/null 2>&1 && return 0
    kill -0 "$dk_pid" 2>/dev/null || { tail -20 "$D/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.1
  done
  tail -20 "$D/dockerd.log" >&2; die "dockerd did not answer on $dk_sock within 60 s"
}
dk_stop() {
  [ -n "${dk_pid:-}" ] || return 0
  local cpid i
  cpid=$(cat "$D/exec/containerd/containerd.pid" 2>/dev/null || true)
  kill "$dk_pid" 2>/dev/null || true
  for ((i = 0; i < 450; i++)); do kill -0 "$dk_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$dk_pid" 2>/dev/null; then log "dockerd did not exit within 45 s of SIGTERM: killing it"; kill -9 "$dk_pid" 2>/dev/null || true; fi
  wait "$dk_pid" 2>/dev/null || true
  dk_pid=
  if [ -n "$cpid" ]; then
    for ((i = 0; i < 150; i++)); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$cpid" 2>/dev/null && { log "dockerd's containerd ($cpid) still running: killing it"; kill -9 "$cpid" 2>/dev/null || true; }
  fi
  return 0
}

# fw_restore SAVE-CMD RESTORE-CMD FAMILY BEFORE-FILE (bench/network.sh's): remove the chains the
# peers added (DOCKER*, CNI-*, NETAVARK* not there before) and the new rules that jump to them
# or name berth's bridge of this root; put built-in chain policies back; delete tables that did
# not exist before and are left empty. Everything else (other sessions' rules) is kept.
fw_restore() {
  local save=$1 restore=$2 fam=$3 before=$4 t
  [ -f "$before" ] || return 0
  "$save" > "$tmp/fw.now" 2>/dev/null || return 0
  awk -v names="$berth_br" '
    function newchain(c) { return (c ~ /^(DOCKER|CNI-|NETAVARK)/) && !((tb SUBSEP c) in had) }
    FILENAME == ARGV[1] {
      if ($0 ~ /^\*/) { tb = substr($0, 2); tables[tb] = 1 }
      else if ($0 ~ /^:/) { c = substr($1, 2); had[tb, c] = 1; pol[tb, c] = $2 }
      else if ($0 ~ /^-A /) rule[tb, $0] = 1
      next
    }
    /^\*/ { tb = substr($0, 2); print; next }
    /^:/ {
      c = substr($1, 2)
      if (newchain(c)) { dropped++; next }
      if ($2 != "-" && (tb, c) in pol && pol[tb, c] != $2) { $2 = pol[tb, c]; changed++ }
      print; next
    }
    /^-A / {
      if ((tb, $0) in rule) { print; next }
      drop = newchain($2)
      for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && newchain($(i + 1))) drop = 1
      n = split(names, nm, " ")
      for (i = 1; i <= n; i++) if (nm[i] != "" && index($0, nm[i])) drop = 1
      if (drop) { dropped++; next }
      print; next
    }
    { print }
    END { if (dropped + changed == 0) exit 3 }
  ' "$before" "$tmp/fw.now" > "$tmp/fw.new" && {
    log "cleanup: removing $fam firewall chains/rules the engines added"
    "$restore" < "$tmp/fw.new" || log "cleanup: $restore failed: $fam rules left as they are"
  }
  "$save" > "$tmp/fw.now" 2>/dev/null || return 0
  awk '/^\*/ { print substr($0, 2) }' "$tmp/fw.now" | while read -r t; do
    grep -qx "\*$t" "$before" && continue
    awk -v t="$t" '/^\*/ { in_t = (substr($0, 2) == t) } in_t && /^-A / { n++ } in_t && /^:/ && $2 == "-" { n++ } END { exit n > 0 }' "$tmp/fw.now" &&
      nft delete table "$fam" "$t" 2>/dev/null
  done
  return 0
}

cleanup() {
  local rc=$? i h p l ids
  set +eu
  trap '' INT TERM
  if [ -d "$B" ]; then
    mapfile -t ids < <(bt ps -aq 2>/dev/null); [ ${#ids[@]} -gt 0 ] && bt rm -f "${ids[@]}" >/dev/null 2>&1
    for id in $(bt ps -aq 2>/dev/null); do bt rm -f "$id" >/dev/null 2>&1; done
  fi
  if [ -n "${podman_driver:-}" ] && [ -f "$P/containers.conf" ]; then
    pm rm -fa -t 0 >/dev/null 2>&1
    # buildah's working containers of an interrupted build
    mapfile -t ids < <(pm ps -aq --external 2>/dev/null); [ ${#ids[@]} -gt 0 ] && pm rm -f "${ids[@]}" >/dev/null 2>&1
    pm unmount -a >/dev/null 2>&1
  fi
  if [ -n "${dk_pid:-}" ]; then
    mapfile -t ids < <(dk ps -aq 2>/dev/null); [ ${#ids[@]} -gt 0 ] && dk rm -f "${ids[@]}" >/dev/null 2>&1
    dk_stop
  fi
  for ((i = 0; i < 50; i++)); do [ -z "$(pids_of '' "$tmp/")" ] && break; sleep 0.1; done
  kill_mentioning "$tmp/"
  [ -n "${ctrl_mounted:-}" ] && umount "$ctrl" # after the engines: crun's delete checks it too
  umount_under "$tmp"
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$bench_id" ] || continue
    find "$h$bench_id" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
      log "cleanup: killing process $p left in cgroup $h$bench_id"; kill -9 "$p" 2>/dev/null
    done
    for ((i = 0; i < 20; i++)); do
      find "$h$bench_id" -depth -type d -exec rmdir {} \; 2>/dev/null
      [ -d "$h$bench_id" ] || break; sleep 0.2
    done
    [ -d "$h$bench_id" ] && log "cleanup: cannot remove cgroup $h$bench_id"
  done
  # berth's network state of this data root (none expected with --network none but its run dir)
  if ip link show "$berth_br" >/dev/null 2>&1; then log "cleanup: removing berth's bridge $berth_br"; ip link del "$berth_br"; fi
  if nft list table ip "$berth_table" >/dev/null 2>&1; then log "cleanup: removing berth's nftables table $berth_table"; nft delete table ip "$berth_table"; fi
  umount_under "$berth_netrun"; rm -rf "$berth_netrun"
  umount_under "$berth_rt"; rm -rf "$berth_rt"
  if [ "$have_ipt" = 1 ]; then
    fw_restore iptables-save iptables-restore ip "$tmp/ipt4.before"
    fw_restore ip6tables-save ip6tables-restore ip6 "$tmp/ipt6.before"
  fi
  for p in $(for i in "${!host_paths[@]}"; do [ "${host_existed[$i]}" = 0 ] && echo "${host_paths[$i]}"; done | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    # a mount point in the host's mount namespace is someone else's
    awk -v p="$p" '$5 == p { f = 1 } END { exit !f }' /proc/1/mountinfo && continue
    umount_under "$p"
    if [ -d "$p" ] && [ ! -L "$p" ]; then
      for ((i = 0; i < 30; i++)); do rmdir "$p" 2>/dev/null && break; sleep 0.1; done
      [ -d "$p" ] && log "cleanup: left $p (not empty: someone else uses it)"
    elif [ -e "$p" ] || [ -L "$p" ]; then rm -f "$p"; fi
  done
  rm -rf "$tmp"
  l=$(comm -13 <(echo "$links_before") <(links_of) | tr '\n' ' ')
  [ -n "$l" ] && log "WARNING: network links that were not there before the run: $l(another session's, or left by an engine)"
  l=$(comm -13 <(echo "$nft_before") <(nft_tables) | tr '\n' ';')
  [ -n "$l" ] && log "WARNING: nftables tables that were not there before the run: $l"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctrl_mounted=
if [ -n "${BENCH_PRIVATE_NS:-}" ]; then
  : > "$tmp/empty-controllers"
  mount --bind "$tmp/empty-controllers" "$ctrl"
  ctrl_mounted=1
fi

now() { local t=${EPOCHREALTIME/./}; echo "$t"; } # microseconds
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } printf "%s\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan" || a == "-" || b == "-" || a == "" || b == "") print "-"; else printf "%.2f", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a != "nan" && a != "" && a <= b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a != "nan" && a != "" && a < b) }'; }
verdict() { if "$@"; then echo "**pass**"; else echo "**FAIL**"; fi; }
notes=()

# --- berth's binaries, copied: others may rebuild bin/ while this runs
mkdir "$tmp/bin"
for b in berth berth-monitor berth-runtime berth-init; do cp -L "$(dirname "$berth_src")/$b" "$tmp/bin/"; done
berth=$tmp/bin/berth

# --- the context: the Dockerfile and src/ with $nfiles small text files (deterministic)
mkdir -p "$ctx/src"
cp "$dockerfile" "$ctx/Dockerfile"
ndirs=12
for ((i = 0; i < ndirs; i++)); do mkdir "$ctx/src/$(printf 'd%02d' "$i")"; done
awk -v dir="$ctx/src" -v n="$nfiles" -v nd="$ndirs" 'BEGIN {
  srand(6)
  for (f = 0; f < n; f++) {
    p = sprintf("%s/d%02d/f%04d.txt", dir, f % nd, f); l = 8 + int(rand() * 72)
    for (i = 0; i < l; i++) printf "%s line %d: %08x %08x\n", substr(p, length(dir) + 2), i, int(rand() * 2147483647), int(rand() * 2147483647) > p
    close(p)
  }
}'
touched=$ctx/src/d05/$(printf 'f%04d.txt' $((5 + ndirs * 3 < nfiles ? 5 + ndirs * 3 : 0)))
[ -f "$touched" ] || touched=$(find "$ctx/src" -type f | sort | head -1)
ctx_kib=$(find "$ctx/src" -type f -printf '%s\n' | awk '{ t += $1 } END { printf "%.0f", t / 1024 }')
expected() { # what `run --rm bench/out:1` must print for the context as it is now
  echo "$greeting"
  printf 'files=%s sha256=%s generated=200\n' "$(cd "$ctx" && find src -type f | wc -l)" \
    "$(cd "$ctx" && find src -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)"
}

# --- the image: the same tar for every engine
case $minbase in
  *.gz) gunzip -c "$minbase" > "$tmp/minbase.tar"; base_tar=$tmp/minbase.tar ;;
  *) base_tar=$minbase ;;
esac
tar_size=$(stat -c %s "$base_tar")
engines=(berth)
bt import -c 'CMD ["bash"]' "$base_tar" "$base" >/dev/null || die "berth import failed"

podman_driver=
if [ "$use_podman" = 1 ]; then
  mkdir -p "$P"/{net,vartmp,t,v}
  nofile=$(ulimit -Hn); { [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ]; } && nofile=1048576
  nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  cat > "$P/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
lock_type = "file"
image_copy_tmp_dir = "$P/vartmp"

[network]
network_config_dir = "$P/net"
EOF
  podman_driver=overlay
  printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' overlay "$P/r" "$P/rr" > "$P/storage.conf"
  if ! pm info >"$tmp/probe.log" 2>&1; then
    log "podman with overlay failed, using vfs: $(tail -3 "$tmp/probe.log")"
    podman_driver=vfs
    printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' vfs "$P/r" "$P/rr" > "$P/storage.conf"
    pm info >"$tmp/probe.log" 2>&1 || { cat "$tmp/probe.log" >&2; die "podman does not work"; }
  fi
  pm import -q -c 'CMD ["bash"]' "$base_tar" "$base" >/dev/null || die "podman import failed"
  engines+=(podman)
fi

dk_driver=
if [ "$use_docker" = 1 ]; then
  mkdir -p "$D/cli"
  dk_driver=vfs
  { grep -q '\soverlay$' /proc/filesystems || modprobe overlay 2>/dev/null; } && dk_driver=overlay2
  printf '{"deprecated-key-path": "%s"}\n' "$D/key.json" > "$D/daemon.json"
  dk_start
  dk import -c 'CMD ["bash"]' "$base_tar" "$base" >/dev/null || die "docker import failed"
  engines+=(docker-classic)
  [ "$use_buildkit" = 1 ] && engines+=(docker-buildkit)
fi
ne=${#engines[@]}

# engine-neutral verbs
build_img() { # engine: build the context as bench/out:1
  case $1 in
    berth) bt build --network none -t "$out" "$ctx" ;;
    # buildah puts a RUN container into --cgroup-parent itself (not a child of it): one of its
    # own, as crun's devices.deny write fails with EINVAL in a v1 cgroup that has children
    podman) pm build --network none --cgroup-parent "/$bench_id/podman-build" -t "$out" "$ctx" ;;
    docker-classic) DOCKER_BUILDKIT=0 dk build --network none -t "$out" "$ctx" ;;
    docker-buildkit) DOCKER_BUILDKIT=1 dk build --progress plain --network none -t "$out" "$ctx" ;;
  esac
}
cli_of() { # engine -> the function that drives it
  case $1 in berth) echo bt ;; podman) echo pm ;; *) echo dk ;; esac
}
image_ids() { # engine: every image ID the engine lists (untagged/intermediate ones too)
  case $1 in
    berth) bt images -aq --no-trunc ;;
    podman) pm images -aq --no-trunc ;;
    *) dk images -aq --no-trunc ;;
  esac | sort -u
}
out_id() { # engine -> ID of bench/out:1 (nothing when absent)
  case $1 in
    berth) bt images -q --no-trunc "$out" ;;
    podman) pm images -q --no-trunc "$out" ;;
    *) dk images -q --no-trunc "$out" ;;
  esac 2>/dev/null | head -1
}
ctr_ids() { # engine: containers left (podman: buildah's working containers too)
  case $1 in
    berth) bt ps -aq ;;
    podman) pm ps -aq --external ;;
    *) dk ps -aq ;;
  esac
}
reset_cache() { # engine: remove the build cache and the result image (outside the clock)
  local e=$1 c i id
  c=$(cli_of "$e")
  {
    [ -z "$(out_id "$e")" ] || $c rmi "$out"
    case $e in
      berth) rm -rf "$B/build/cache"; bt image prune -f ;;
      podman) pm image prune -f ;;
      *) dk image prune -f; dk builder prune -af ;;
    esac
  } >"$tmp/reset.log" 2>&1 || { cat "$tmp/reset.log" >&2; die "$e: removing the build cache failed"; }
  # what an engine's prune leaves (a parent that became dangling only now, an intermediate image
  # a docker-like prune keeps) goes in further passes: prune again, then rmi by ID
  for ((i = 0; i < 3; i++)); do
    [ "$(image_ids "$e")" = "${base_ids[$e]}" ] && return 0
    case $e in berth) bt image prune -f ;; podman) pm image prune -f ;; *) dk image prune -f ;; esac >>"$tmp/reset.log" 2>&1 || true
    for id in $(comm -23 <(image_ids "$e") <(echo "${base_ids[$e]}")); do $c rmi -f "$id"; done >>"$tmp/reset.log" 2>&1 || true
  done
  [ "$(image_ids "$e")" = "${base_ids[$e]}" ] && return 0
  cat "$tmp/reset.log" >&2
  die "$e: images left after removing the build cache: $(image_ids "$e" | tr '\n' ' ')(expected only $base: ${base_ids[$e]})"
}
berth_leftovers() { # mounts under berth's root, runtime state entries, build scratch space
  local m s t
  m=$(awk -v p="$B" 'index($5, p "/") == 1' /proc/self/mountinfo | wc -l)
  s=$(find "$berth_rt" -mindepth 1 -maxdepth 1 ! -name '.*' 2>/dev/null | wc -l)
  t=$(find "$B/build/mnt" "$B/build/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  [ "$m" = 0 ] && [ "$s" = 0 ] && [ "$t" = 0 ] && return 0
  echo "$m mounts under the berth root, $s runtime state entries in $berth_rt, $t entries in build/mnt and build/tmp"
  return 1
}
declare -A base_ids
for e in "${engines[@]}"; do base_ids[$e]=$(image_ids "$e"); done
for e in "${engines[@]}"; do
  [ "$(echo "${base_ids[$e]}" | grep -c .)" = 1 ] || die "$e: expected one image after the import, got: ${base_ids[$e]}"
done

# --- docker's BuildKit: does it work with this dockerd? (one build, outside the measurement)
if [ "$use_buildkit" = 1 ]; then
  if ! build_img docker-buildkit >"$tmp/probe.log" 2>&1; then
    log "docker's BuildKit does not build here, left out: $(tail -5 "$tmp/probe.log" | tr '\n' ' ')"
    notes+=("docker-buildkit left out: \`DOCKER_BUILDKIT=1 docker build\` failed: $(tail -3 "$tmp/probe.log" | tr '\n' ' ')")
    engines=("${engines[@]/docker-buildkit/}"); mapfile -t engines < <(printf '%s\n' "${engines[@]}" | grep .)
    ne=${#engines[@]}; use_buildkit=0
  fi
  reset_cache docker-classic
fi

# --- environment
echo "## Environment"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/^MemTotal:/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), cgroup mode $(cgroup_mode)"
echo "- state on $(stat -fc %T "$tmp") ($(df --output=source "$tmp" | tail -1)), all engines under $tmp"
echo "- berth $("$berth" --version | awk '{ print $NF }'), binary of $(date -u -r "$berth_src" '+%F %T UTC') (${berth_src#"$repo"/}, copied with its berth-monitor, berth-runtime and berth-init into the temp dir at start); \`build --network none\`"
if [ "$use_podman" = 1 ]; then
  echo "- $(podman --version) (buildah $(pm info --format '{{.Host.BuildahVersion}}' 2>/dev/null || echo '?')), $(pm info --format '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Version}}' 2>/dev/null | head -1) (OCI runtime), $(conmon --version | head -1); $podman_driver storage, cgroupfs; \`build --network none\`, --layers (default), OCI format (default)"
else
  echo "- podman: not measured (BENCH_PODMAN=0)"
fi
if [ "$use_docker" = 1 ]; then
  echo "- dockerd $(dk version --format '{{.Server.Version}}') (Debian), client $(dk version --format '{{.Client.Version}}') (/usr/bin/docker), $(containerd --version | awk '{ print "containerd", $3 }'), $(runc --version | head -1); $dk_driver, cgroupfs; --bridge=none --iptables=false; \`build --network none\` with DOCKER_BUILDKIT=0 (docker-classic)$([ "$use_buildkit" = 1 ] && echo " and DOCKER_BUILDKIT=1 --progress plain (docker-buildkit: dockerd's built-in BuildKit)")"
else
  echo "- dockerd: not measured (BENCH_DOCKER=0)"
fi
echo "- image: $base, ${minbase#"$repo"/} ($(awk -v b="$tar_size" 'BEGIN { printf "%.0f MiB", b / 1048576 }') tar) imported as one layer with CMD [\"bash\"], the same tar for every engine"
echo "- Dockerfile: bench/build/Dockerfile (FROM $base + ENV, WORKDIR, COPY src/, RUN writing 200 files, RUN reading every copied file, CMD); context: $nfiles files in $ndirs directories, $ctx_kib KiB; the touched file: ${touched#"$ctx"/}"
[ -n "${BENCH_PRIVATE_NS:-}" ] && echo "- fix applied: private mount namespace with an empty file over $ctrl (host lists: ${BENCH_PRIVATE_NS% }), for crun's hybrid-mode check (podman's runtime); all engines run in it"
echo

# --- the rounds
timed_build() { # engine phase label -> appends "label engine phase µs" to times; sets built_id
  local e=$1 ph=$2 lb=$3 t0 t1 rc=0
  sync # no build pays for the writeback of the one before it
  t0=$(now)
  build_img "$e" >"$tmp/build-$e-$ph.log" 2>&1 || rc=$?
  t1=$(now)
  [ "$rc" = 0 ] || { tail -30 "$tmp/build-$e-$ph.log" >&2; die "$e: $ph build exited $rc (round $lb)"; }
  [ "$lb" = warmup ] || echo "$lb $e $ph $((t1 - t0))" >> "$tmp/times"
  built_id=$(out_id "$e")
  [ -n "$built_id" ] || die "$e: no $out after the $ph build (round $lb)"
}
declare -A verified
: > "$tmp/times"
built_id=
for ((r = 1 - warmup; r <= runs; r++)); do
  label=$r; [ "$r" -le 0 ] && label=warmup
  for ((k = 0; k < ne; k++)); do
    e=${engines[(k + r + 2 * ne) % ne]}
    reset_cache "$e"
    timed_build "$e" cold "$label"; cold_id=$built_id
    timed_build "$e" cached "$label"
    if [ "$built_id" != "$cold_id" ]; then
      notes+=("$e, round $label: the unchanged rebuild gave image ${built_id:0:19}, the cold build ${cold_id:0:19}")
    fi
    printf '\n# touched in round %s by %s\n' "$label" "$e" >> "$touched"
    timed_build "$e" touched "$label"
    [ "$built_id" != "$cold_id" ] || die "$e: the build after changing ${touched#"$ctx"/} gave the cold build's image (round $label)"
    if [ -z "${verified[$e]:-}" ]; then
      want=$(expected)
      c=$(cli_of "$e")
      got=$($c run --rm --network none "$out" 2>&1) || die "$e: run --rm $out failed: $got"
      [ "$got" = "$want" ] || die "$e: run --rm $out printed \"$got\", expected \"$want\""
      verified[$e]=1
      log "$e: $out runs and prints the expected summary"
      [ -z "$(ctr_ids "$e")" ] || die "$e: containers left after the builds and run --rm: $(ctr_ids "$e" | tr '\n' ' ')"
    fi
  done
  # the floors, once a round (information)
  sync; t0=$(now); bt images -q >/dev/null; t1=$(now)
  [ "$label" = warmup ] || echo "$label floor-cli - $((t1 - t0))" >> "$tmp/times"
  t0=$(now); tar -C "$ctx" -c src | sha256sum >/dev/null; t1=$(now)
  [ "$label" = warmup ] || echo "$label floor-hash - $((t1 - t0))" >> "$tmp/times"
  if [ "$label" = warmup ]; then log "warm-up round done"
  else log "round $label done: $(awk -v r="$label" '$1 == r && $3 != "-" { printf "%s %s %.2fs; ", $2, $3, $4 / 1e6 }' "$tmp/times")"; fi
done
for e in "${engines[@]}"; do
  [ -z "$(ctr_ids "$e")" ] || notes+=("$e: containers left after the builds: $(ctr_ids "$e" | tr '\n' ' ')")
done
if x=$(berth_leftovers); then :; else notes+=("berth after the builds: $x"); fi
# what a cached build printed (the last round's), to show it did no container work
for e in "${engines[@]}"; do
  case $e in
    docker-buildkit) n=$(grep -c ' CACHED$' "$tmp/build-$e-cached.log" || true); what="steps CACHED" ;;
    *) n=$(grep -c -e '---> Using cache' -e '--> Using cache' "$tmp/build-$e-cached.log" || true); what="steps \"Using cache\"" ;;
  esac
  notes+=("$e, fully cached build (last round): $n $what")
done

# --- the tables
stats_ms() { # engine phase -> "median min max" in ms
  awk -v e="$1" -v p="$2" '$2 == e && $3 == p { print $4 / 1000 }' "$tmp/times" | sort -g | awk '
    { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.1f %.1f %.1f\n", m, v[1], v[NR] }'
}
paired() { # peer phase -> median of the per-round ratios berth/peer
  awk -v e="$1" -v p="$2" '$3 == p && $2 == "berth" { b[$1] = $4 } $3 == p && $2 == e { q[$1] = $4 }
    END { for (r in b) if (r in q) print b[r] / q[r] }' "$tmp/times" | median | xargs printf "%.2f"
}
faster_in() { # peer phase -> rounds berth was faster
  awk -v e="$1" -v p="$2" '$3 == p && $2 == "berth" { b[$1] = $4 } $3 == p && $2 == e { q[$1] = $4 }
    END { for (r in b) if (r in q) { n++; if (b[r] < q[r]) f++ } printf "%d/%d", f, n }' "$tmp/times"
}
declare -A med
declare -A phase_title=([cold]="cold (build cache and result image removed first)" [cached]="fully cached rebuild (unchanged)" [touched]="after changing one copied file")
echo "## Build times, $runs interleaved rounds (ms, whole CLI command)"
echo
echo "| build | engine | median | min | max | berth / engine (of medians) | median of per-round ratios | berth faster in |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for ph in cold cached touched; do
  for e in "${engines[@]}"; do
    read -r m lo hi < <(stats_ms "$e" "$ph"); med[$e,$ph]=$m
    if [ "$e" = berth ]; then echo "| ${phase_title[$ph]} | berth | $m | $lo | $hi | 1.00 | - | - |"
    else echo "| ${phase_title[$ph]} | $e | $m | $lo | $hi | $(ratio "${med[berth,$ph]}" "$m") | $(paired "$e" "$ph") | $(faster_in "$e" "$ph") rounds |"; fi
  done
done
read -r fc_m fc_lo fc_hi < <(stats_ms floor-cli -)
read -r fh_m fh_lo fh_hi < <(stats_ms floor-hash -)
echo
echo "Floors, same rounds (information): \`berth images -q\` (CLI start-up, store opened) median $fc_m ms (min $fc_lo, max $fc_hi); hashing the context (\`tar -c src | sha256sum\`) median $fh_m ms (min $fh_lo, max $fh_hi)."
echo
echo "Raw (round:engine:build=ms): $(awk '$3 != "-"' "$tmp/times" | sort -k1,1n -k2,2 -k3,3 | awk '{ printf "%s%s:%s:%s=%.1f", (NR > 1 ? ", " : ""), $1, $2, $3, $4 / 1000 }')"
echo

# --- targets
peers=("${engines[@]:1}")
echo "## Targets (issue 6)"
echo
echo "| target | figure | verdict |"
echo "| --- | --- | --- |"
if [ ${#peers[@]} -gt 0 ]; then
  best=; bm=
  for e in "${peers[@]}"; do
    if [ -z "$bm" ] || lt "${med[$e,cold]}" "$bm"; then best=$e; bm=${med[$e,cold]}; fi
  done
  x=$(ratio "${med[berth,cold]}" "$bm")
  echo "| cold build at most the best peer's | berth ${med[berth,cold]} ms, best peer $best $bm ms: berth/$best $x (per-round $(paired "$best" cold)) | $(verdict le "$x" 1) |"
fi
echo "| fully cached rebuild under 100 ms | berth ${med[berth,cached]} ms (max $(stats_ms berth cached | cut -d' ' -f3)) | $(verdict lt "${med[berth,cached]}" 100) |"
for e in "${peers[@]}"; do
  x=$(ratio "${med[berth,cached]}" "${med[$e,cached]}")
  echo "| fully cached rebuild faster than $e | berth ${med[berth,cached]} ms, $e ${med[$e,cached]} ms: berth/$e $x (per-round $(paired "$e" cached), faster in $(faster_in "$e" cached) rounds) | $(verdict lt "$x" 1) |"
done
for e in "${peers[@]}"; do
  echo "| rebuild after one changed file, vs $e (information) | berth ${med[berth,touched]} ms, $e ${med[$e,touched]} ms: berth/$e $(ratio "${med[berth,touched]}" "${med[$e,touched]}") | - |"
done
echo
if [ ${#notes[@]} -gt 0 ]; then
  echo "Notes:"
  for n in "${notes[@]}"; do echo "- $n"; done
  echo
fi
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
exit
