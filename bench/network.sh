#!/usr/bin/env bash
# Networking: berth vs podman vs dockerd (Debian's), same machine, same run, same imported
# busybox image, interleaved (issue "bridge networking": network setup cost, published-port
# throughput and connection rate, DNAT vs a userland proxy for 127.0.0.1).
#
#   make build bundle && bash bench/network.sh
#   BENCH_RUNS=30 BENCH_NET_ROUNDS=5 bash bench/network.sh
#   BENCH_BERTH=0 bash bench/network.sh          # the peers only
#
# Environment:
#   BENCH_RUNS          measured rounds of the setup-time measurement (default 15)
#   BENCH_WARMUP        warm-up rounds of it, not counted (default 2)
#   BENCH_NET_ROUNDS    rounds of the throughput / connection-rate measurement (default 3)
#   BENCH_NET_DURATION  duration of each throughput and connrate run (default 5s)
#   BENCH_NET_STREAMS   parallel connections of a throughput run (default 1)
#   BENCH_NET_CONNS     concurrent workers of a connrate run (default 8)
#   BENCH_BERTH         0 to leave berth out (while its bridge networking is not ready)
#   BENCH_PODMAN        0 to leave podman out
#   BENCH_DOCKER        0 to leave dockerd out
#   BENCH_PODMAN_NETWORK_BACKEND  cni or netavark (default: podman's choice; Debian bookworm's
#                       podman 4.3 has the CNI plugins, containernetworking-plugins, as a
#                       dependency and netavark only when installed separately)
#   BERTH               berth binary (default bin/berth; berth-monitor, berth-runtime and
#                       berth-init must be beside it; the four are copied into the temp dir)
#
# The image: bench/busybox:1, the rootfs of _build/busybox-bundle imported into each engine,
# as bench/engine.sh does. The traffic tool: bench/nettool, built static into the temp dir and
# bind-mounted read-only into the containers as /nettool.
#
# The engines, each with its own state in one temp dir and its own bridge and subnet, chosen
# at start among 10.213-10.230.x.0/24 where no host route overlaps:
#   berth   `berth --root <tmp>/berth`: the default network "bridge" (its bridge device and
#           nftables table are named after the data root; BERTH_DEFAULT_SUBNET sets its
#           subnet); published ports are DNAT rules in berth's table.
#   podman  rootful, own root/runroot/containers.conf/storage.conf (as bench/engine.sh) and own
#           network config dir holding one bridge network with its own interface name and
#           subnet, made the default network through containers.conf's default_network; its
#           network backend as `podman info` reports it (CNI here: bridge + portmap plugins,
#           ports as iptables DNAT rules).
#   docker  Debian's dockerd with its own socket, data root, exec root, containerd namespace,
#           cgroup parent, and a bridge device of its own (`--bridge`, made by this script with
#           the subnet's .1): the default bridge network, iptables rules, docker-proxy (the
#           userland proxy, docker's default, which serves 127.0.0.1).
#
# What is measured:
#  a) Network setup time: `run -d IMAGE sleep 100000` on the default bridge network and with
#     `--network none`; BENCH_WARMUP + BENCH_RUNS rounds, in each round every engine once in
#     each mode, the engine order rotating each round and the mode order alternating; the
#     clock (bash EPOCHREALTIME) covers the whole CLI command; `rm -f` after each, outside the
#     clock (its time is recorded for information: it includes the network teardown).
#     Per engine: median with none, median with bridge, the difference (the network setup);
#     ratio berth / podman and berth / docker of the differences.
#  b) Throughput and connections/s from the host: each engine runs `/nettool serve -l :8080`
#     in a container published with `-p 127.0.0.1:HOSTPORT:8080`; the host runs `nettool
#     throughput` (BENCH_NET_STREAMS connections, 128 KiB writes, counted once the server has
#     read them) and `nettool connrate` (BENCH_NET_CONNS workers: connect, 1 byte each way,
#     close) against:
#       <engine> 127.0.0.1:HOSTPORT  the engine's published-port path (berth: DNAT; podman:
#                                    its portmap DNAT; docker: docker-proxy)
#       berth proxy                  `nettool proxy` on 127.0.0.1 to the container's IP:8080
#                                    (a userland proxy with splice, the alternative to DNAT)
#       <engine> container IP        straight to the container's address: the floor
#     Each path has a server container of its own (connrate's TIME_WAIT sockets stay in the
#     server's namespace, and the DNAT path's masqueraded flows would collide with the direct
#     ones there: 1 s SYN retransmits). BENCH_NET_ROUNDS rounds, paths in rotating order;
#     medians and bests (the best round: on a shared 2-CPU machine a round that meets other
#     load halves); ratios to docker's 127.0.0.1. The host process listening on each published
#     port is shown (docker-proxy, podman's conmon holding the port, none for berth).
#  Then every container is removed and what each engine leaves is listed (bridge, nftables
#  table and the DNAT rules left in it, veths, per-container iptables chains).
# Everything is removed at exit, even when interrupted: containers, the podman network, the
# bridges this script or the engines made, the iptables chains and rules the peers added
# (DOCKER*, CNI-*, NETAVARK* chains that were not there before, and the rules that jump to
# them or name this run's bridges or subnets; built-in chain policies put back), iptables
# tables that did not exist before and are left empty, berth's nftables table for this data
# root, the sysctls the engines set (ip_forward, ...; left, and said, when links of another
# session appeared meanwhile: its bridges may need them), processes, mounts, cgroups, temp dir.
# `ip -br link` and `nft list tables` are compared before and after: anything new is reported.
#
# crun's hybrid-mode refusal is worked around as in bench/engine.sh (a private mount
# namespace with an empty cgroup.controllers over the host's; network state is not affected).
set -euo pipefail
# shellcheck disable=SC2317 # (shellcheck takes the functions in this { } group for unreachable)
{ # the whole script is one compound command, parsed before it runs: an edit of this file
  # during a run (a rebuild, a checkout) does not reach the running copy
self=$(realpath "$0")
cd "$(dirname "$self")/.."
repo=$PWD

die() { echo "bench/network.sh: $*" >&2; exit 1; }
log() { echo "bench/network.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"

runs=${BENCH_RUNS:-15}
warmup=${BENCH_WARMUP:-2}
net_rounds=${BENCH_NET_ROUNDS:-3}
net_dur=${BENCH_NET_DURATION:-5s}
net_streams=${BENCH_NET_STREAMS:-1}
net_conns=${BENCH_NET_CONNS:-8}
use_berth=1 use_podman=1 use_docker=1
[ "${BENCH_BERTH:-1}" = 0 ] && use_berth=0
[ "${BENCH_PODMAN:-1}" = 0 ] && use_podman=0
[ "${BENCH_DOCKER:-1}" = 0 ] && use_docker=0
podman_backend=${BENCH_PODMAN_NETWORK_BACKEND:-}
berth_src=$(realpath -s "${BERTH:-$repo/bin/berth}")
berth=$berth_src
rootfs=$repo/_build/busybox-bundle/rootfs
image=bench/busybox:1

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
if [ "$use_podman" = 1 ]; then command -v podman >/dev/null && command -v conmon >/dev/null || need+=(podman); fi
if [ "$use_docker" = 1 ]; then command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || need+=(docker.io); fi
if [ ${#need[@]} -gt 0 ]; then
  set=bench; [ "$use_docker" = 1 ] && set=engines
  log "installing what is missing (${need[*]}): scripts/install-deps.sh $set"
  bash scripts/install-deps.sh "$set"
fi
command -v go >/dev/null || die "go missing (bench/nettool is built at start)"
if [ "$use_berth" = 1 ]; then
  for b in "$berth_src" "$(dirname "$berth_src")"/berth-{monitor,runtime,init}; do
    [ -x "$b" ] || die "$b missing: run make build (or BENCH_BERTH=0)"
  done
fi
[ -x "$rootfs/bin/busybox" ] || die "$rootfs missing: run make bundle"
[ $((use_berth + use_podman + use_docker)) -gt 0 ] || die "no engine left to measure"
have_ipt=0; command -v iptables-save >/dev/null && command -v iptables-restore >/dev/null && have_ipt=1

# --- state, and what cleanup must undo
tmp=$(mktemp -d /tmp/berth-nb.XXXXXX)
bench_id=${tmp##*/}
sfx=$(printf %s "$tmp" | sha256sum | cut -c1-6) # names of this run's devices and networks
B=$tmp/berth
berth_rt=/run/berth/rt-$(printf %s "$B" | sha256sum | cut -c1-12)
berth_hash=$(printf %s "$B" | sha256sum | cut -c1-8) # berth's per-root network names
berth_br=berth-${berth_hash:0:6} berth_table=berth-$berth_hash berth_netrun=/run/berth/net-$berth_hash
P=$tmp/podman D=$tmp/docker
pm_net=nb$sfx pm_br=nbpm$sfx dk_br=nbdk$sfx
dk_pid='' dk_sock=$D/d.sock dk_ns=$bench_id
proxy_pid=''
host_paths=(/var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers
  /run/containers /run/libpod /run/docker/plugins /run/docker/netns /run/docker /run/containerd/s
  /run/containerd /etc/docker/key.json /run/crun /run/runc /run/berth
  "/var/lib/cni/networks/$pm_net/lock" "/var/lib/cni/networks/$pm_net/last_reserved_ip.0" "/var/lib/cni/networks/$pm_net"
  /var/lib/cni/networks /var/lib/cni/results /var/lib/cni /run/netns /run/cni)
host_existed=()
for p in "${host_paths[@]}"; do
  if [ -e "$p" ] || [ -L "$p" ]; then host_existed+=(1); else host_existed+=(0); fi
done
netns_existed=0; [ -e /run/netns ] && netns_existed=1
# sysctls the engines may set (docker and the CNI bridge plugin: ip_forward; docker:
# bridge-nf-call-*); put back at exit
sysctls=(net/ipv4/ip_forward net/ipv4/conf/all/forwarding net/ipv4/conf/default/forwarding
  net/ipv6/conf/all/forwarding net/ipv6/conf/default/forwarding net/ipv4/conf/all/route_localnet
  net/ipv4/conf/default/route_localnet net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables)
sysctl_before=()
for s in "${sysctls[@]}"; do sysctl_before+=("$(cat "/proc/sys/$s" 2>/dev/null || echo -)"); done
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

bt() { BERTH_DEFAULT_SUBNET=$bt_subnet "$berth" --root "$B" "$@"; }
pm() {
  CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf TMPDIR=$P/vartmp \
    podman --root "$P/r" --runroot "$P/rr" --tmpdir "$P/t" --volumepath "$P/v" \
    --network-config-dir "$P/net" --storage-driver "$podman_driver" --cgroup-manager cgroupfs \
    --events-backend file "$@"
}
dk() { DOCKER_CONFIG=$D/cli /usr/bin/docker -H "unix://$dk_sock" "$@"; }

dk_start() { # dockerd (and its containerd), with bridge networking on our own bridge device
  setsid dockerd --host "unix://$dk_sock" --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/d.pid" \
    --config-file "$D/daemon.json" --bridge "$dk_br" --ip6tables=false \
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

# fw_restore SAVE-CMD RESTORE-CMD FAMILY BEFORE-FILE: remove the chains the peers added
# (DOCKER*, CNI-*, NETAVARK* not there before) and the new rules that jump to them or name this
# run's bridges or subnets; put built-in chain policies back; delete tables that did not exist
# before and are left empty. Everything else (other sessions' rules) is kept as it is now.
fw_restore() {
  local save=$1 restore=$2 fam=$3 before=$4 t
  [ -f "$before" ] || return 0
  "$save" > "$tmp/fw.now" 2>/dev/null || return 0
  awk -v names="$dk_br $pm_br $berth_br ${subnets[*]:-}" '
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
    "$restore" < "$tmp/fw.new" || log "cleanup: $restore failed: $fam rules left as they are"
  }
  # tables the engines created that are empty now
  "$save" > "$tmp/fw.now" 2>/dev/null || return 0
  awk '/^\*/ { print substr($0, 2) }' "$tmp/fw.now" | while read -r t; do
    grep -qx "\*$t" "$before" && continue
    awk -v t="$t" '/^\*/ { in_t = (substr($0, 2) == t) } in_t && /^-A / { n++ } in_t && /^:/ && $2 == "-" { n++ } END { exit n > 0 }' "$tmp/fw.now" &&
      nft delete table "$fam" "$t" 2>/dev/null
  done
  return 0
}

cleanup() {
  local rc=$? i h p s l ids
  set +eu
  trap '' INT TERM
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
  if [ -d "$B" ]; then
    mapfile -t ids < <(bt ps -aq 2>/dev/null); [ ${#ids[@]} -gt 0 ] && bt rm -f "${ids[@]}" >/dev/null 2>&1
    for id in $(bt ps -aq 2>/dev/null); do bt rm -f "$id" >/dev/null 2>&1; done
  fi
  if [ -n "${podman_driver:-}" ] && [ -f "$P/containers.conf" ]; then
    pm rm -fa -t 0 >/dev/null 2>&1; pm unmount -a >/dev/null 2>&1
    pm network rm -f "$pm_net" >/dev/null 2>&1
  fi
  if [ -n "${dk_pid:-}" ]; then
    mapfile -t ids < <(dk ps -aq 2>/dev/null); [ ${#ids[@]} -gt 0 ] && dk rm -f "${ids[@]}" >/dev/null 2>&1
    dk_stop
  fi
  for ((i = 0; i < 50; i++)); do [ -z "$(pids_of '' "$tmp/")" ] && break; sleep 0.1; done
  kill_mentioning "$tmp/"
  [ -n "${ctrl_mounted:-}" ] && umount "$ctrl"
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
  # network state: berth's (its bridge, table and run dir for this data root: left behind is
  # reported by the run itself), the bridges this run made, the peers' firewall rules
  if ip link show "$berth_br" >/dev/null 2>&1; then ip link del "$berth_br"; fi
  if nft list table ip "$berth_table" >/dev/null 2>&1; then nft delete table ip "$berth_table"; fi
  umount_under "$berth_netrun"; rm -rf "$berth_netrun"
  for l in "$pm_br" "$dk_br"; do
    ip link show "$l" >/dev/null 2>&1 && { ip link del "$l" || log "cleanup: cannot delete link $l"; }
  done
  if [ "$have_ipt" = 1 ]; then
    fw_restore iptables-save iptables-restore ip "$tmp/ipt4.before"
    fw_restore ip6tables-save ip6tables-restore ip6 "$tmp/ipt6.before"
  fi
  # the sysctls, unless links of someone else's appeared meanwhile (another session's bridge
  # may need the forwarding it turned on: then they are left, and reported)
  l=$(comm -13 <(echo "$links_before") <(links_of) | tr '\n' ' ')
  for i in "${!sysctls[@]}"; do
    s=${sysctls[$i]}
    if [ -n "$l" ]; then
      [ "$(cat "/proc/sys/$s" 2>/dev/null)" = "${sysctl_before[$i]}" ] || [ "${sysctl_before[$i]}" = - ] ||
        log "cleanup: left $s = $(cat "/proc/sys/$s") (was ${sysctl_before[$i]}): links not of this run appeared: $l"
      continue
    fi
    [ "${sysctl_before[$i]}" = - ] && continue
    [ "$(cat "/proc/sys/$s" 2>/dev/null)" = "${sysctl_before[$i]}" ] || echo "${sysctl_before[$i]}" > "/proc/sys/$s" 2>/dev/null ||
      log "cleanup: cannot put back $s = ${sysctl_before[$i]}"
  done
  rm -rf "$berth_rt"
  # /run/netns: podman (CNI) makes it a shared bind mount of itself, as `ip netns add` does
  [ "$netns_existed" = 0 ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ] &&
    ! awk '$5 == "/run/netns" { f = 1 } END { exit !f }' /proc/1/mountinfo && umount_under /run/netns
  for p in $(for i in "${!host_paths[@]}"; do [ "${host_existed[$i]}" = 0 ] && echo "${host_paths[$i]}"; done | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    # a mount point in the host's mount namespace is someone else's (`ip netns add` of another
    # session makes /run/netns one): removing the directory from here would detach it there
    awk -v p="$p" '$5 == p { f = 1 } END { exit !f }' /proc/1/mountinfo && continue
    if [ -d "$p" ] && [ ! -L "$p" ]; then
      # an engine's asynchronous cleanup (podman's exit command) may still be removing entries
      for ((i = 0; i < 30; i++)); do rmdir "$p" 2>/dev/null && break; sleep 0.1; done
      [ -d "$p" ] && log "cleanup: left $p (not empty: someone else uses it)"
    elif [ -e "$p" ] || [ -L "$p" ]; then rm -f "$p"; fi
  done
  rm -rf "$tmp"
  # what is left: links and nftables tables that were not there before
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
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a != "nan" && a >= b) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a != "nan" && a <= b) }'; }
verdict() { if "$@"; then echo "**pass**"; else echo "**FAIL**"; fi; }
notes=()

# --- subnets: /24s where no host route overlaps (routes inside, or covering other than default)
subnet_free() { # 10.X.0.0/16 -> true when no route overlaps it
  [ -z "$(ip -4 route show root "$1")" ] && ! ip -4 route show match "$1" | grep -qv '^default'

}
base=
for x in $(seq 213 230); do subnet_free "10.$x.0.0/16" && { base=10.$x; break; }; done
[ -n "$base" ] || die "no free 10.213-230.0.0/16 for the bench networks"
bt_subnet=$base.9.0/24 pm_subnet=$base.8.0/24 dk_subnet=$base.7.0/24
subnets=("$bt_subnet" "$pm_subnet" "$dk_subnet")

# --- host ports: four free ones below the ephemeral range
free_port() { [ -z "$(ss -Htan "sport = :$1")" ]; }
ports=()
for p in $(seq $((20000 + RANDOM % 10000)) 31999); do
  free_port "$p" && ports+=("$p")
  [ ${#ports[@]} = 4 ] && break
done
[ ${#ports[@]} = 4 ] || die "no four free TCP ports"
declare -A hport=([berth]=${ports[0]} [podman]=${ports[1]} [docker]=${ports[2]})
proxy_port=${ports[3]}

# --- the traffic tool
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/nettool" ./bench/nettool || die "cannot build bench/nettool"
nt=$tmp/nettool
mount_nt=(-v "$nt:/nettool:ro")

# --- the image and the engines
tar -C "$rootfs" -cf "$tmp/rootfs.tar" .
engines=()
if [ "$use_berth" = 1 ]; then
  mkdir "$tmp/bin"
  for b in berth berth-monitor berth-runtime berth-init; do cp -L "$(dirname "$berth_src")/$b" "$tmp/bin/"; done
  berth=$tmp/bin/berth
  bt import -c 'CMD ["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null || die "berth import failed"
  engines+=(berth)
fi

podman_driver=
if [ "$use_podman" = 1 ]; then
  mkdir -p "$P"/{net,vartmp,t,v}
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ] && nofile=1048576
  nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
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
${podman_backend:+network_backend = \"$podman_backend\"}
EOF
  podman_driver=overlay
  printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' overlay "$P/r" "$P/rr" > "$P/storage.conf"
  if ! pm info >"$tmp/probe.log" 2>&1; then
    log "podman with overlay failed, using vfs: $(tail -3 "$tmp/probe.log")"
    podman_driver=vfs
    printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' vfs "$P/r" "$P/rr" > "$P/storage.conf"
    pm info >"$tmp/probe.log" 2>&1 || { cat "$tmp/probe.log" >&2; die "podman does not work"; }
  fi
  # podman 4.3 has no --interface-name: the bridge device is named in the network's config
  # file (CNI: "bridge" of the bridge plugin; netavark: "network_interface"), set here
  pm network create --driver bridge --subnet "$pm_subnet" "$pm_net" >/dev/null || die "podman network create failed"
  f=$(find "$P/net" -maxdepth 1 -name "$pm_net.*" | head -1)
  [ -n "$f" ] || die "podman network create wrote no config file under $P/net"
  sed -i -E "s/(\"(bridge|network_interface)\": *\")[^\"]*\"/\1$pm_br\"/" "$f"
  [ "$(pm network inspect -f '{{.NetworkInterface}}' "$pm_net")" = "$pm_br" ] ||
    die "podman network $pm_net: cannot set its bridge device ($f)"
  # then it is the default network (made while it was not: else podman makes it on its own)
  sed -i "s|^network_config_dir = .*|&\ndefault_network = \"$pm_net\"|" "$P/containers.conf"
  pm import -q -c 'CMD ["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null || die "podman import failed"
  engines+=(podman)
fi

dk_driver=
if [ "$use_docker" = 1 ]; then
  mkdir -p "$D/cli"
  dk_driver=vfs
  { grep -q '\soverlay$' /proc/filesystems || modprobe overlay 2>/dev/null; } && dk_driver=overlay2
  printf '{"deprecated-key-path": "%s"}\n' "$D/key.json" > "$D/daemon.json"
  ip link add "$dk_br" type bridge
  ip addr add "${dk_subnet%.0/24}.1/24" dev "$dk_br"
  ip link set "$dk_br" up
  dk_start
  dk import -c 'CMD ["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null || die "docker import failed"
  engines+=(docker)
fi
ne=${#engines[@]}

run_ctr() { # engine mode(none|bridge) args...
  local e=$1 m=$2 net=()
  shift 2
  [ "$m" = none ] && net=(--network none)
  case $e in
    berth) bt run "${net[@]}" "$@" ;;
    podman) pm run "${net[@]}" --cgroup-parent "/$bench_id" "$@" ;;
    docker) dk run "${net[@]}" "$@" ;;
  esac
}
rm_ctr() { # engine id-or-name...
  local e=$1; shift
  case $e in berth) bt rm -f "$@" ;; podman) pm rm -f -t 0 "$@" ;; docker) dk rm -f "$@" ;; esac
}
ids_of() { case $1 in berth) bt ps -aq ;; podman) pm ps -aq ;; docker) dk ps -aq ;; esac; }
ctr_ip() { # engine name -> the container's IPv4 address on its one network
  local ip=
  case $1 in
    berth) # docker's deprecated top-level field first, then the network's
      ip=$(bt inspect -f '{{.NetworkSettings.IPAddress}}' "$2" 2>/dev/null || true)
      [ "$ip" != "<no value>" ] || ip=''
      [ -n "$ip" ] || ip=$(bt inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$2") ;;
    podman) ip=$(pm inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$2") ;;
    docker) ip=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$2") ;;
  esac
  echo "$ip"
}
port_of() { case $1 in berth) bt port "$2" ;; podman) pm port "$2" ;; docker) dk port "$2" ;; esac; }

# --- environment
echo "## Environment"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/^MemTotal:/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), cgroup mode $(cgroup_mode), iptables: $(iptables --version 2>/dev/null || echo none)"
if [ "$use_berth" = 1 ]; then
  echo "- berth $("$berth" --version | awk '{ print $NF }'), binary of $(date -u -r "$berth_src" '+%F %T UTC'); default network \"bridge\" (BERTH_DEFAULT_SUBNET=$bt_subnet, bridge device $berth_br, nftables table $berth_table): published ports as DNAT"
else
  echo "- berth: not measured (BENCH_BERTH=0)"
fi
if [ "$use_podman" = 1 ]; then
  pm_backend=$(pm info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo '?')
  echo "- $(podman --version), $(conmon --version | head -1), network backend **$pm_backend**$([ "$pm_backend" = cni ] && echo " (containernetworking-plugins $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null): bridge, portmap, firewall, tuning)"); network $pm_net made the default (containers.conf default_network), bridge device $pm_br, subnet $pm_subnet; $podman_driver storage, cgroupfs"
else
  echo "- podman: not measured (BENCH_PODMAN=0)"
fi
if [ "$use_docker" = 1 ]; then
  echo "- dockerd $(dk version --format '{{.Server.Version}}') (Debian), $(containerd --version | awk '{ print "containerd", $3 }'), $(runc --version | head -1); default bridge network on bridge device $dk_br (made by this script, $dk_subnet), iptables on, userland proxy (docker-proxy) on, as docker's defaults; $dk_driver"
else
  echo "- dockerd: not measured (BENCH_DOCKER=0)"
fi
echo "- image bench/busybox:1 (the busybox bundle's rootfs, the same tarball for every engine); traffic tool bench/nettool (static Go, bind-mounted read-only as /nettool)"
[ -n "${BENCH_PRIVATE_NS:-}" ] && echo "- fix applied: private mount namespace with an empty file over $ctrl (for crun's hybrid-mode check); all engines run in it"
echo

# --- a) network setup time: run -d with the default bridge network minus with --network none
: > "$tmp/setup"
modes=(none bridge)
for ((r = 1 - warmup; r <= runs; r++)); do
  for ((k = 0; k < ne; k++)); do
    e=${engines[(k + r + 2 * ne) % ne]}
    for ((j = 0; j < 2; j++)); do
      m=${modes[(j + r + 2) % 2]}
      t0=$(now)
      rc=0; id=$(run_ctr "$e" "$m" -d "$image" sleep 100000 2>"$tmp/run.log") || rc=$?
      t1=$(now)
      [ "$rc" = 0 ] || { cat "$tmp/run.log" >&2; die "$e: run -d ($m) exited $rc"; }
      id=$(tail -1 <<<"$id")
      t2=$(now)
      rm_ctr "$e" "$id" >"$tmp/rm.log" 2>&1 || { cat "$tmp/rm.log" >&2; die "$e: rm -f $id failed"; }
      t3=$(now)
      [ "$r" -le 0 ] || echo "$r $e $m $((t1 - t0)) $((t3 - t2))" >> "$tmp/setup"
    done
  done
done
for e in "${engines[@]}"; do
  [ -z "$(ids_of "$e")" ] || die "$e: containers left after the setup rounds: $(ids_of "$e" | tr '\n' ' ')"
done
log "setup time: $runs rounds done"

col_ms() { # engine mode column -> median in ms
  awk -v e="$1" -v m="$2" -v c="$3" '$2 == e && $3 == m { print $c / 1000 }' "$tmp/setup" | median
}
declare -A snone sbridge sdiff
echo "## a) Network setup: \`run -d IMAGE sleep 100000\`, default bridge network vs \`--network none\` ($runs interleaved rounds, ms)"
echo
echo "| engine | none, median | bridge, median | difference (network setup) | difference, median of per-round | \`rm -f\` none | \`rm -f\` bridge |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for e in "${engines[@]}"; do
  snone[$e]=$(col_ms "$e" none 4); sbridge[$e]=$(col_ms "$e" bridge 4)
  sdiff[$e]=$(awk -v a="${sbridge[$e]}" -v b="${snone[$e]}" 'BEGIN { printf "%.1f", a - b }')
  pr=$(awk -v e="$e" '$2 == e { t[$1, $3] = $4; r[$1] = 1 } END { for (x in r) print (t[x, "bridge"] - t[x, "none"]) / 1000 }' "$tmp/setup" | median)
  printf '| %s | %.1f | %.1f | %s | %.1f | %.1f | %.1f |\n' "$e" "${snone[$e]}" "${sbridge[$e]}" "${sdiff[$e]}" "$pr" \
    "$(col_ms "$e" none 5)" "$(col_ms "$e" bridge 5)"
done
echo
echo "Raw (round:engine:mode=run ms/rm ms): $(sort -k1,1n -k2,2 -k3,3 "$tmp/setup" | awk '{ printf "%s%s:%s:%s=%.1f/%.1f", (NR > 1 ? ", " : ""), $1, $2, $3, $4 / 1000, $5 / 1000 }')"
echo

# --- b) throughput and connections/s
# One server container per path: connrate's server closes first, so TIME_WAIT sockets pile up
# in the container's namespace, and a published port's DNAT + masquerade reuses the source
# ports of direct connections from another address pair (other sequence numbers and TCP
# timestamps): the server then drops or challenges some SYNs and a client waits 1 s for the
# retransmit. Separate namespaces keep each path's figures its own.
declare -A cip addr what
start_server() { # engine name [run args...] -> the container's IP
  local e=$1 n=$2 ip
  shift 2
  run_ctr "$e" bridge -d --name "$n" "$@" "${mount_nt[@]}" "$image" /nettool serve -l :8080 \
    >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log" >&2; die "$e: run of server container $n failed"; }
  ip=$(ctr_ip "$e" "$n")
  [ -n "$ip" ] || die "$e: no IP address for $n"
  "$nt" probe -a "$ip:8080" -t 15s || die "$e: the server at $ip:8080 ($n) does not answer"
  echo "$ip"
}
paths=()
for e in "${engines[@]}"; do
  start_server "$e" "nb-lo-$e" -p "127.0.0.1:${hport[$e]}:8080" >/dev/null
  log "$e: nb-lo-$e published as $(port_of "$e" "nb-lo-$e" | tr '\n' ' ')"
  "$nt" probe -a "127.0.0.1:${hport[$e]}" -t 15s || die "$e: 127.0.0.1:${hport[$e]} (published) does not answer"
  cip[$e]=$(start_server "$e" "nb-ip-$e")
  paths+=("$e-lo"); addr[$e-lo]=127.0.0.1:${hport[$e]}
  paths+=("$e-ip"); addr[$e-ip]=${cip[$e]}:8080; what[$e-ip]="$e, container IP (no NAT, no proxy)"
done
what[berth-lo]="berth, 127.0.0.1:${hport[berth]} (DNAT)"
what[podman-lo]="podman, 127.0.0.1:${hport[podman]} (${pm_backend:-?})"
what[docker-lo]="docker, 127.0.0.1:${hport[docker]} (docker-proxy)"
if [ "$use_podman" = 1 ] && [ "${pm_backend:-}" = cni ]; then what[podman-lo]="podman, 127.0.0.1:${hport[podman]} (CNI portmap DNAT)"; fi
if [ "$use_podman" = 1 ] && [ "${pm_backend:-}" = netavark ]; then what[podman-lo]="podman, 127.0.0.1:${hport[podman]} (netavark DNAT)"; fi
if [ "$use_berth" = 1 ]; then
  px_ip=$(start_server berth nb-px-berth)
  "$nt" proxy -l "127.0.0.1:$proxy_port" -t "$px_ip:8080" > "$tmp/proxy.out" 2>"$tmp/proxy.err" &
  proxy_pid=$!
  "$nt" probe -a "127.0.0.1:$proxy_port" -t 15s || die "nettool proxy on 127.0.0.1:$proxy_port does not answer"
  paths+=(berth-proxy); addr[berth-proxy]=127.0.0.1:$proxy_port
  what[berth-proxy]="berth, 127.0.0.1:$proxy_port via nettool proxy (userland, splice) to the container IP"
fi
# who serves each published port on the host (docker-proxy, conmon, nobody = pure DNAT)
declare -A listener
for e in "${engines[@]}"; do
  listener[$e]=$(ss -Htlnp "sport = :${hport[$e]}" | { grep -o 'users:(("[^"]*"' || true; } | cut -d'"' -f2 | sort -u | tr '\n' ' ')
  [ -n "${listener[$e]}" ] || listener[$e]="none (kernel DNAT)"
done
if [ "$use_docker" = 1 ] && [ -z "$(pids_of docker-proxy "-host-port ${hport[docker]}")" ]; then
  notes+=("docker: no docker-proxy process for port ${hport[docker]}")
fi

[ "$use_berth" = 1 ] && [ "$(bt inspect -f '{{.NetworkSettings.IPAddress}}' nb-ip-berth 2>&1)" = "<no value>" ] && notes+=("berth: \`inspect -f '{{.NetworkSettings.IPAddress}}'\` gives <no value> (docker 20.10 fills this deprecated field for the default bridge network); the address was read from .NetworkSettings.Networks")
np=${#paths[@]}
: > "$tmp/net"
for ((r = 0; r < net_rounds; r++)); do
  for ((k = 0; k < np; k++)); do
    pth=${paths[(k + r) % np]}
    tp=$("$nt" throughput -a "${addr[$pth]}" -d "$net_dur" -P "$net_streams" 2>"$tmp/nt.err") ||
      { cat "$tmp/nt.err" >&2; die "$pth: throughput to ${addr[$pth]} failed"; }
    cr=$("$nt" connrate -a "${addr[$pth]}" -d "$net_dur" -c "$net_conns" 2>"$tmp/nt.err") ||
      { cat "$tmp/nt.err" >&2; die "$pth: connrate to ${addr[$pth]} failed"; }
    read -r _ tp_v _ <<<"$tp"
    read -r _ cr_v _ _ _ cr_err _ _ _ cr_slow _ cr_max <<<"$cr"
    [ "$cr_err" = 0 ] || notes+=("round $((r + 1)), ${what[$pth]}: connrate had $cr_err failed connections ($(head -1 "$tmp/nt.err"))")
    echo "$((r + 1)) $pth $tp_v $cr_v $cr_slow $cr_max" >> "$tmp/net"
    log "net round $((r + 1)): $pth: $tp; $cr; load $(cut -d' ' -f1 /proc/loadavg)"
  done
done

declare -A tput cps tbest cbest
echo "## b) Throughput and connections/s from the host ($net_rounds rounds; throughput: $net_streams stream(s), 128 KiB writes, $net_dur; connrate: $net_conns workers, $net_dur)"
echo
echo "*host socket on the port*: the process listening on the published port on the host (podman's conmon only holds it, the traffic is DNATed; docker's docker-proxy carries it). *best*: the highest round; on a machine shared with other work (see the load average) a round that shares the 2 CPUs with something else drops to about half, so the best round is the closer figure for what the path can do, the median the more conservative. *exchanges over 200 ms*: connrate connections that took over 200 ms (a retransmitted SYN: 1 s), summed over the rounds, and the slowest. Ratios are to docker's 127.0.0.1 path, of the medians (of the bests)."
echo
echo "| path | host socket on the port | throughput MB/s, median | best | per round | connections/s, median | best | per round | exchanges over 200 ms, slowest ms | throughput / docker 127.0.0.1 | conn/s / docker 127.0.0.1 |"
echo "| --- | --- | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |"
col() { awk -v p="$1" -v c="$2" '$2 == p { print $c }' "$tmp/net"; }
for pth in "${paths[@]}"; do
  tput[$pth]=$(col "$pth" 3 | median | xargs printf '%.1f')
  cps[$pth]=$(col "$pth" 4 | median | xargs printf '%.1f')
  tbest[$pth]=$(col "$pth" 3 | sort -g | tail -1)
  cbest[$pth]=$(col "$pth" 4 | sort -g | tail -1)
done
for pth in "${paths[@]}"; do
  e=${pth%%-*}; lst=-
  [ "$pth" = "$e-lo" ] && lst=${listener[$e]}
  [ "$pth" = berth-proxy ] && lst=nettool
  echo "| ${what[$pth]} | $lst | ${tput[$pth]} | ${tbest[$pth]} | $(col "$pth" 3 | paste -sd, | sed 's/,/, /g') | ${cps[$pth]} | ${cbest[$pth]} | $(col "$pth" 4 | paste -sd, | sed 's/,/, /g') | $(awk -v p="$pth" '$2 == p { n += $5; if ($6 > m) m = $6 } END { printf "%d, %.0f", n, m }' "$tmp/net") | $(ratio "${tput[$pth]}" "${tput[docker-lo]:-}") ($(ratio "${tbest[$pth]}" "${tbest[docker-lo]:-}")) | $(ratio "${cps[$pth]}" "${cps[docker-lo]:-}") ($(ratio "${cbest[$pth]}" "${cbest[docker-lo]:-}")) |"
done
echo

# --- everything removed: what each engine leaves on the host afterwards
if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || :; wait "$proxy_pid" 2>/dev/null || :; proxy_pid=''; fi
declare -A brname=([berth]=$berth_br [podman]=$pm_br [docker]=$dk_br)
for e in "${engines[@]}"; do
  mapfile -t ids < <(ids_of "$e")
  [ ${#ids[@]} -eq 0 ] || rm_ctr "$e" "${ids[@]}" >"$tmp/rm.log" 2>&1 || { cat "$tmp/rm.log" >&2; die "$e: rm -f failed"; }
done
sleep 1 # podman's cleanup runs after rm returns
for e in "${engines[@]}"; do
  left=()
  [ -z "$(ids_of "$e")" ] || left+=("containers: $(ids_of "$e" | tr '\n' ' ')")
  v=$(ip -o link show master "${brname[$e]}" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); printf "%s ", $2 }')
  [ -z "$v" ] || left+=("veths on ${brname[$e]}: $v")
  v=; [ "$e" = docker ] && v=" (made by this script for dockerd's --bridge)"
  ip link show "${brname[$e]}" >/dev/null 2>&1 && left+=("bridge ${brname[$e]}$v")
  if [ "$e" = berth ] && nft list table ip "$berth_table" >/dev/null 2>&1; then
    v=$(nft -a list chain ip "$berth_table" ports 2>/dev/null | grep -c 'dnat' || true)
    left+=("nftables table $berth_table ($v DNAT rules in its ports chain)")
    [ "$v" = 0 ] || notes+=("berth: $v DNAT rules left in table $berth_table after every container was removed")
  fi
  if [ "$e" != berth ] && [ "$have_ipt" = 1 ]; then
    if [ "$e" = docker ]; then v=$(iptables-save 2>/dev/null | grep -c -E '^-A DOCKER .*-j DNAT' || true)
    else v=$(iptables-save 2>/dev/null | grep -c -E '^:CNI-(DN-)?[0-9a-f]{16,}' || true); fi
    [ "$v" = 0 ] || left+=("$v per-container iptables DNAT rules or chains")
  fi
  [ ${#left[@]} -eq 0 ] && left=(nothing)
  notes+=("$e, after \`rm -f\` of all its containers, leaves: $(printf '%s; ' "${left[@]}" | sed 's/; $//')")
done

# --- targets
echo "## Summary"
echo
echo "| comparison | figure | verdict |"
echo "| --- | --- | --- |"
[ "$use_berth" = 1 ] || echo "| (berth not measured: BENCH_BERTH=0) | - | - |"
if [ "$use_berth" = 1 ] && [ "$use_podman" = 1 ]; then
  x=$(ratio "${sdiff[berth]}" "${sdiff[podman]}")
  echo "| network setup (bridge - none) at most half podman's | berth ${sdiff[berth]} ms, podman ${sdiff[podman]} ms: berth/podman $x | $(verdict le "$x" 0.5) |"
fi
if [ "$use_berth" = 1 ] && [ "$use_docker" = 1 ]; then
  echo "| network setup (bridge - none), berth vs docker | berth ${sdiff[berth]} ms, docker ${sdiff[docker]} ms: berth/docker $(ratio "${sdiff[berth]}" "${sdiff[docker]}") | (information) |"
  x=$(ratio "${tput[berth-lo]}" "${tput[docker-lo]}") y=$(ratio "${tbest[berth-lo]}" "${tbest[docker-lo]}")
  v=$(verdict ge "$x" 1); [ "$(verdict ge "$y" 1)" = "$v" ] || v="$v (medians), $(verdict ge "$y" 1) (bests)"
  echo "| 127.0.0.1 published-port throughput at least docker's | medians: berth ${tput[berth-lo]} MB/s, docker ${tput[docker-lo]} MB/s: berth/docker $x; bests: ${tbest[berth-lo]}, ${tbest[docker-lo]}: $y | $v |"
  echo "| 127.0.0.1 published-port connections/s, berth vs docker | medians: berth ${cps[berth-lo]}/s, docker ${cps[docker-lo]}/s: berth/docker $(ratio "${cps[berth-lo]}" "${cps[docker-lo]}"); bests: ${cbest[berth-lo]}, ${cbest[docker-lo]}: $(ratio "${cbest[berth-lo]}" "${cbest[docker-lo]}") | (information) |"
fi
if [ "$use_berth" = 1 ] && [ "$use_podman" = 1 ]; then
  echo "| 127.0.0.1 published port, berth vs podman | throughput berth/podman $(ratio "${tput[berth-lo]}" "${tput[podman-lo]}") (bests $(ratio "${tbest[berth-lo]}" "${tbest[podman-lo]}")), connections/s $(ratio "${cps[berth-lo]}" "${cps[podman-lo]}") (bests $(ratio "${cbest[berth-lo]}" "${cbest[podman-lo]}")) | (information) |"
fi
if [ "$use_berth" = 1 ]; then
  echo "| berth 127.0.0.1: DNAT vs userland proxy (nettool proxy) | throughput DNAT/proxy $(ratio "${tput[berth-lo]}" "${tput[berth-proxy]}") (bests $(ratio "${tbest[berth-lo]}" "${tbest[berth-proxy]}")), connections/s DNAT/proxy $(ratio "${cps[berth-lo]}" "${cps[berth-proxy]}") (bests $(ratio "${cbest[berth-lo]}" "${cbest[berth-proxy]}")) | (information) |"
  echo "| berth 127.0.0.1 DNAT vs the container IP (the floor) | throughput $(ratio "${tput[berth-lo]}" "${tput[berth-ip]}") (bests $(ratio "${tbest[berth-lo]}" "${tbest[berth-ip]}")), connections/s $(ratio "${cps[berth-lo]}" "${cps[berth-ip]}") (bests $(ratio "${cbest[berth-lo]}" "${cbest[berth-ip]}")) of the floor | (information) |"
fi
echo
if [ ${#notes[@]} -gt 0 ]; then
  echo "Notes:"
  for n in "${notes[@]}"; do echo "- $n"; done
  echo
fi
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
exit
