#!/usr/bin/env bash
# The engine: berth vs podman vs dockerd (Debian's), same machine, same run, same imported
# busybox image, interleaved (DESIGN.md section 5, rows 2, 4 and 6; issue 4, "Benchmarks").
#
#   make build bundle && bash bench/engine.sh
#   BENCH_RUNS=30 BENCH_DETACH_N=100 bash bench/engine.sh
#
# Environment:
#   BENCH_RUNS        measured rounds of `run --rm IMAGE true` (default 15)
#   BENCH_WARMUP      warm-up rounds, not counted (default 2)
#   BENCH_IDLE_N      idle containers per engine in the memory measurement (default 20)
#   BENCH_MEM_ROUNDS  rounds of the memory measurement, engines in rotating order (default 3)
#   BENCH_DETACH_N    detached containers started one after another (default 100)
#   BENCH_SETTLE      seconds to wait before sampling host memory (default 2)
#   BENCH_SETTLE_MAX  then at most this many seconds more until it is steady (default 15)
#   BENCH_STEADY_KIB  a memory round counts when host used memory after rm is within this of
#                     before (default 256 KiB per idle container)
#   BENCH_PODMAN      0 to leave podman out
#   BENCH_DOCKER      0 to leave dockerd out
#   BENCH_PODMAN_RUNTIME  podman's OCI runtime (default: podman's own default, crun here)
#   BERTH             berth binary (default bin/berth; berth-monitor, berth-runtime and
#                     berth-init must be beside it). The four are copied into the temp dir at
#                     start, so a rebuild of bin/ during the run does not mix builds.
#
# The image: the rootfs of the repo's busybox bundle (_build/busybox-bundle/rootfs, from
# `make bundle`) as one tarball, imported into each engine as bench/busybox:1 with CMD ["sh"]:
#   berth   `berth --root R import -c 'CMD ["sh"]' rootfs.tar bench/busybox:1`
#   podman  `podman --root .. --runroot .. import -c 'CMD ["sh"]' rootfs.tar bench/busybox:1`
#   docker  `docker -H unix://.. import -c 'CMD ["sh"]' rootfs.tar bench/busybox:1`
# Every container of every engine runs with `--network none`: berth's bridge networking is a
# later issue, so this measures the `--network none` rows, not the default-network ones.
#
# The engines, each with its own state in one temp dir:
#   berth   `berth --root <tmp>/berth`; its runtime state goes to /run/berth/rt-<hash of the
#           root>, removed at exit. Daemonless: one berth-monitor process (the hub) supervises
#           every running container.
#   podman  `podman --root --runroot --tmpdir ...` with its own containers.conf and storage.conf
#           (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF: cgroupfs manager, file events log, file
#           locks instead of /dev/shm/libpod_lock, ulimits the host allows: this sandbox withholds
#           CAP_SYS_RESOURCE, so podman's default RLIMIT_NOFILE of 1048576 fails every create),
#           overlay storage (vfs without overlayfs), `--cgroup-parent /<bench>`. Daemonless: one
#           conmon per running container; its default OCI runtime (crun).
#   docker  Debian's dockerd started for this run with its own socket, data root, exec root,
#           config file, containerd namespace and cgroup parent, `--bridge=none
#           --iptables=false`; its managed containerd; runc; one containerd-shim-runc-v2 per
#           running container. Started for the `run --rm` rounds, stopped (by PID) after
#           them, started again for each of its memory windows only (see 2.) and for the
#           detached runs, stopped at exit.
#
# What is measured:
#  1. `run --rm --network none bench/busybox:1 true`: BENCH_WARMUP + BENCH_RUNS rounds, in each
#     round every engine once, the order rotating each round. The clock (bash EPOCHREALTIME,
#     µs) covers the whole CLI command, from fork to exit: create, start, wait, removal as the
#     engine does it for --rm. Every run must exit 0; after the loop no container may be left.
#     Medians, min, max; ratios peer/berth of the medians and the median of per-round ratios.
#  2. Memory per idle container: BENCH_MEM_ROUNDS rounds; in each, one engine at a time (order
#     rotating) starts BENCH_IDLE_N `run -d --network none bench/busybox:1 sleep 100000`.
#     Host used memory = MemTotal - MemAvailable (/proc/meminfo), the median of 5 samples 0.4 s
#     apart, taken after BENCH_SETTLE s and then once it is steady (4 samples 0.5 s apart within
#     2 MiB, at most BENCH_SETTLE_MAX s more), before and after the containers are started:
#     (after - before) / BENCH_IDLE_N is the memory added per container (monitor, container
#     process, kernel objects, page cache of state and logs, daemon growth: all of it). It is
#     sampled a third time after the containers are removed, as a check of the baseline (for
#     docker before dockerd is started and after it is stopped, as its heap keeps part of what
#     the containers made it allocate): only rounds where it came back within BENCH_STEADY_KIB
#     count for the host figure, and its target is judged only when at least half the rounds
#     of both engines count.
#     Then Pss, Pss_Anon and Rss from /proc/PID/smaps_rollup of every per-container supervisor:
#     berth's berth-monitor processes, podman's conmon, docker's containerd-shim-runc-v2 (found
#     by their command lines, which name this run's dirs or containerd namespace), and the
#     summed Pss of the supervisors, their descendants (the containers' processes) and, for
#     docker, the growth of dockerd + containerd: user-space memory per container, steadier
#     than the host figure. Then all the containers are removed (rm -f, outside any clock) and
#     the engine must have no container and no supervisor left. dockerd runs only during
#     docker's windows: a Go daemon hands freed heap back to the kernel over minutes, which
#     would otherwise count as memory freed in the next engine's window. The machine is shared:
#     host memory moves with other sessions; every round's figure is printed.
#  3. BENCH_DETACH_N `run -d --network none bench/busybox:1 sleep 100000` one after another,
#     one engine at a time: the wall time of the whole sequence (every command must exit 0 and
#     all containers must be running at the end), the rate in containers per second, the
#     ratio of rates. Then `rm -f` of all of them (timed for information, not a target).
# Everything goes into one temp dir that is removed at exit, even when interrupted: containers
# removed, dockerd and its containerd stopped by PID, any process naming the temp dir killed by
# PID, mounts under it unmounted, the cgroup parent, berth's /run/berth/rt-* dir and host paths
# the engines created on their own (/run/docker, /var/lib/containers/cache, ...) removed.
#
# crun (podman's default runtime) refuses a cgroup v1/v2 hybrid host whose cgroup2 mount lists
# a controller ("cgroups in hybrid mode not supported"). As in bench/runtime.sh, the script
# then re-runs itself in a private mount namespace with an empty file bind-mounted over
# /sys/fs/cgroup/unified/cgroup.controllers (only crun reads it; the host is unchanged); all
# three engines run in that namespace alike. The output says so.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
repo=$PWD

die() { echo "bench/engine.sh: $*" >&2; exit 1; }
log() { echo "bench/engine.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"

runs=${BENCH_RUNS:-15}
warmup=${BENCH_WARMUP:-2}
idle_n=${BENCH_IDLE_N:-20}
mem_rounds=${BENCH_MEM_ROUNDS:-3}
detach_n=${BENCH_DETACH_N:-100}
settle=${BENCH_SETTLE:-2}
settle_max=${BENCH_SETTLE_MAX:-15}
steady_kib=${BENCH_STEADY_KIB:-$((256 * idle_n))}
use_podman=1 use_docker=1
[ "${BENCH_PODMAN:-1}" = 0 ] && use_podman=0
[ "${BENCH_DOCKER:-1}" = 0 ] && use_docker=0
podman_rt=${BENCH_PODMAN_RUNTIME:-}
berth_src=$(realpath -s "${BERTH:-$repo/bin/berth}")
berth=$berth_src # until the copy below
rootfs=$repo/_build/busybox-bundle/rootfs
image=bench/busybox:1

cgroup_mode() {
  case "$(stat -fc %T /sys/fs/cgroup)" in
    cgroup2fs) echo unified ;;
    *) if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo hybrid; else echo legacy; fi ;;
  esac
}

# --- the crun hybrid-mode workaround (see the header): re-run in a private mount namespace
ctrl=/sys/fs/cgroup/unified/cgroup.controllers
if [ -z "${BENCH_PRIVATE_NS:-}" ] && [ "$use_podman" = 1 ] && [ -z "$podman_rt" -o "$podman_rt" = crun ] &&
  [ "$(cgroup_mode)" = hybrid ] && [ -n "$(tr -d "[:space:]" < "$ctrl")" ]; then
  BENCH_PRIVATE_NS="$(tr '\n' ' ' < "$ctrl")" exec unshare --mount --propagation private bash "$self" "$@"
fi

# --- prerequisites
need=()
if [ "$use_podman" = 1 ]; then command -v podman >/dev/null && command -v conmon >/dev/null || need+=(podman); fi
if [ "$use_docker" = 1 ]; then command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || need+=(docker.io); fi
if [ ${#need[@]} -gt 0 ]; then
  set=bench; [ "$use_docker" = 1 ] && set=engines # `engines` has docker.io, podman and runc
  log "installing what is missing (${need[*]}): scripts/install-deps.sh $set"
  bash scripts/install-deps.sh "$set"
fi
for b in "$berth_src" "$(dirname "$berth_src")"/berth-{monitor,runtime,init}; do
  [ -x "$b" ] || die "$b missing: run make build"
done
[ -x "$rootfs/bin/busybox" ] || die "$rootfs missing: run make bundle"

# --- state, and what cleanup must undo
tmp=$(mktemp -d /tmp/berth-eb.XXXXXX)
bench_id=${tmp##*/}          # cgroup parent (podman, docker) and containerd namespace
B=$tmp/berth                 # berth's data root
berth_rt=/run/berth/rt-$(printf %s "$B" | sha256sum | cut -c1-12)
berth_net=/run/berth/net-$(printf %s "$B" | sha256sum | cut -c1-8) # network.Open's run dir
P=$tmp/podman D=$tmp/docker
dk_pid= dk_sock=$D/d.sock dk_ns=$bench_id
host_paths=(/var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers
  /run/containers /run/libpod /run/docker/plugins /run/docker/netns /run/docker /run/containerd/s
  /run/containerd /etc/docker/key.json /run/crun /run/runc /run/berth)
host_existed=()
for p in "${host_paths[@]}"; do
  if [ -e "$p" ] || [ -L "$p" ]; then host_existed+=(1); else host_existed+=(0); fi
done

umount_under() { # unmount everything mounted at or below $1, deepest first
  local m
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
# pids_of NAME SUBSTR: processes whose comm or argv[0]'s base name starts with NAME and whose
# command line contains SUBSTR
pids_of() {
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
kill_mentioning() { # kill, by PID, every process whose command line names $1, and their descendants
  local p c hit=()
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
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
    --events-backend file ${podman_rt:+--runtime "$podman_rt"} "$@"
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

cleanup() {
  local rc=$? i h p
  set +eu
  trap '' INT TERM
  if [ -d "$B" ]; then
    ids=$(bt ps -aq 2>/dev/null); [ -n "$ids" ] && bt rm -f $ids >/dev/null 2>&1
    # then one at a time whatever is left (a berth rm -f of several ids has crashed)
    for id in $(bt ps -aq 2>/dev/null); do bt rm -f "$id" >/dev/null 2>&1; done
  fi
  if [ -n "${podman_driver:-}" ] && [ -f "$P/containers.conf" ]; then
    pm rm -fa -t 0 >/dev/null 2>&1; pm unmount -a >/dev/null 2>&1
  fi
  if [ -n "${dk_pid:-}" ]; then
    ids=$(dk ps -aq 2>/dev/null); [ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1
    dk_stop
  fi
  for ((i = 0; i < 50; i++)); do [ -z "$(pids_of '' "$tmp/")" ] && break; sleep 0.1; done
  kill_mentioning "$tmp/"
  [ -n "${ctrl_mounted:-}" ] && umount "$ctrl" # after the engines: crun's delete checks it too
  umount_under "$tmp"
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$bench_id" ] || continue
    for p in $(find "$h$bench_id" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      log "cleanup: killing process $p left in cgroup $h$bench_id"; kill -9 "$p" 2>/dev/null
    done
    for ((i = 0; i < 20; i++)); do
      find "$h$bench_id" -depth -type d -exec rmdir {} \; 2>/dev/null
      [ -d "$h$bench_id" ] || break; sleep 0.2
    done
    [ -d "$h$bench_id" ] && log "cleanup: cannot remove cgroup $h$bench_id"
  done
  rm -rf "$berth_rt"
  # the data root's network run dir: its netns dir is bind-mounted onto itself (shared, so pins
  # propagate), in this private namespace only; unmount, then remove what is empty
  umount_under "$berth_net"; [ -d "$berth_net" ] && find "$berth_net" -depth -type d -empty -delete
  # host paths the engines made on their own: deepest first, dirs only when empty
  for p in $(for i in "${!host_paths[@]}"; do [ "${host_existed[$i]}" = 0 ] && echo "${host_paths[$i]}"; done | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    if [ -d "$p" ] && [ ! -L "$p" ]; then rmdir "$p" 2>/dev/null || log "cleanup: left $p (not empty: someone else uses it)"
    elif [ -e "$p" ] || [ -L "$p" ]; then rm -f "$p"; fi
  done
  rm -rf "$tmp"
  exit $rc
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
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } printf "%s\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan" || v == "") print "-"; else printf f, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "-"; else printf "%.2f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a != "nan" && a >= b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a != "nan" && a < b) }'; }
verdict() { if "$@"; then echo "**pass**"; else echo "**FAIL**"; fi; }
used_kib() { awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { print t - a }' /proc/meminfo; }
sample_used() { # settle, then the median of 5 samples 0.4 s apart (KiB)
  local i v lo hi w=()
  sleep "$settle"
  # then wait, up to BENCH_SETTLE_MAX s, until 4 samples 0.5 s apart lie within 2 MiB
  # (daemons return freed heap to the kernel gradually, page cache moves with other sessions)
  for ((i = 0; i < settle_max * 2; i++)); do
    w+=("$(used_kib)"); [ ${#w[@]} -gt 4 ] && w=("${w[@]:1}")
    if [ ${#w[@]} = 4 ]; then
      read -r lo hi < <(printf '%s\n' "${w[@]}" | sort -n | sed -n '1p;$p' | tr '\n' ' ')
      [ $((hi - lo)) -lt 2048 ] && break
    fi
    sleep 0.5
  done
  for i in 1 2 3 4 5; do used_kib; [ $i = 5 ] || sleep 0.4; done | median
}

# --- berth's binaries, copied: others may rebuild bin/ while this runs (berth finds
# berth-monitor, berth-runtime and berth-init beside its own executable)
mkdir "$tmp/bin"
for b in berth berth-monitor berth-runtime berth-init; do cp -L "$(dirname "$berth_src")/$b" "$tmp/bin/"; done
berth=$tmp/bin/berth

# --- the image
tar -C "$rootfs" -cf "$tmp/rootfs.tar" .
tar_size=$(stat -c %s "$tmp/rootfs.tar")
engines=(berth)

bt import -c 'CMD ["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null || die "berth import failed"

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
EOF
  podman_driver=overlay
  printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' overlay "$P/r" "$P/rr" > "$P/storage.conf"
  if ! pm info >"$tmp/probe.log" 2>&1; then
    log "podman with overlay failed, using vfs: $(tail -3 "$tmp/probe.log")"
    podman_driver=vfs
    printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' vfs "$P/r" "$P/rr" > "$P/storage.conf"
    pm info >"$tmp/probe.log" 2>&1 || { cat "$tmp/probe.log" >&2; die "podman does not work"; }
  fi
  pm import -q -c 'CMD ["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null || die "podman import failed"
  engines+=(podman)
fi

dk_driver=
if [ "$use_docker" = 1 ]; then
  mkdir -p "$D/cli"
  dk_driver=vfs
  grep -q '\soverlay$' /proc/filesystems || modprobe overlay 2>/dev/null && dk_driver=overlay2
  printf '{"deprecated-key-path": "%s"}\n' "$D/key.json" > "$D/daemon.json"
  dk_start
  dk import -c 'CMD ["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null || die "docker import failed"
  engines+=(docker)
fi
ne=${#engines[@]}

# engine-neutral verbs
run_ctr() { # engine args...  (run --network none ...)
  local e=$1; shift
  case $e in
    berth) bt run --network none "$@" ;;
    podman) pm run --network none --cgroup-parent "/$bench_id" "$@" ;;
    docker) dk run --network none "$@" ;;
  esac
}
ids_of() { # engine [running-only]
  local a=-aq; [ "${2:-}" = running ] && a=-q
  case $1 in berth) bt ps $a ;; podman) pm ps $a ;; docker) dk ps $a ;; esac
}
rm_all() { # engine
  local ids
  ids=$(ids_of "$1")
  [ -n "$ids" ] || return 0
  case $1 in
    berth) bt rm -f $ids ;;
    podman) pm rm -f -t 0 $ids ;;
    docker) dk rm -f $ids ;;
  esac >"$tmp/rm.log" 2>&1 || { cat "$tmp/rm.log" >&2; die "$1: rm -f failed"; }
}
monitor_pids() { # engine: its supervisors (berth: the data root's hub, or one per container)
  case $1 in
    berth) pids_of berth-monitor "$B/" ;;
    podman) pids_of conmon "$P/" ;;
    docker) pids_of containerd-shim "-namespace $dk_ns " ;;
  esac
}
monitor_name() { case $1 in berth) echo berth-monitor ;; podman) echo conmon ;; docker) echo containerd-shim-runc-v2 ;; esac; }
# smaps_rollup PID -> "Pss Pss_Anon Rss" in KiB (nothing when the process is gone)
rollup() { awk '/^Pss:/ { p = $2 } /^Pss_Anon:/ { a = $2 } /^Rss:/ { r = $2 } END { if (p != "") print p, a, r }' "/proc/$1/smaps_rollup" 2>/dev/null || true; }
daemon_pids() { # engine: its daemons, whose growth counts too (docker: dockerd and its containerd)
  [ "$1" = docker ] || return 0
  echo "$dk_pid"
  cat "$D/exec/containerd/containerd.pid" 2>/dev/null || true
  echo
}
pss_sum() { # PIDs... -> summed Pss (KiB)
  local p t=0 x
  for p in "$@"; do x=$(rollup "$p"); [ -n "$x" ] && t=$((t + ${x%% *})); done
  echo "$t"
}
wait_gone() { # engine: after rm, no container and no supervisor may be left (10 s grace)
  local i n m
  for ((i = 0; i < 100; i++)); do
    n=$(ids_of "$1" | wc -l); m=$(monitor_pids "$1" | wc -l)
    [ "$n" = 0 ] && [ "$m" = 0 ] && return 0
    sleep 0.1
  done
  die "$1: $n containers and $m $(monitor_name "$1") processes left 10 s after rm -f"
}
berth_leftovers() { # mounts under berth's root, entries in its runtime root besides dot dirs
  local m s
  m=$(awk -v p="$B" 'index($5, p "/") == 1' /proc/self/mountinfo | wc -l)
  s=$(find "$berth_rt" -mindepth 1 -maxdepth 1 ! -name '.*' 2>/dev/null | wc -l)
  [ "$m" = 0 ] && [ "$s" = 0 ] && return 0
  echo "$m mounts under the berth root, $s runtime state entries in $berth_rt"
  return 1
}
notes=() # berth misbehaviour and other things the reader should know

# --- environment
commit="$("$berth" --version | awk '{ print $NF }'), binary of $(date -u -r "$berth_src" '+%F %T UTC') (${berth_src#"$repo"/}, copied with its berth-monitor, berth-runtime and berth-init into the temp dir at start)"
echo "## Environment"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/^MemTotal:/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), cgroup mode $(cgroup_mode)"
echo "- state on $(stat -fc %T "$tmp") ($(df --output=source "$tmp" | tail -1)), all engines under $tmp"
echo "- berth $commit; --root in the temp dir, runtime state in $berth_rt"
if [ "$use_podman" = 1 ]; then
  echo "- $(podman --version), $(pm info --format '{{.Host.OCIRuntime.Version}}' 2>/dev/null | head -1) (OCI runtime), $(conmon --version | head -1); $podman_driver storage, cgroupfs, cgroup parent /$bench_id, file events log and locks, default ulimits nofile=$nofile nproc=$nproc"
else
  echo "- podman: not measured (BENCH_PODMAN=0)"
fi
if [ "$use_docker" = 1 ]; then
  echo "- dockerd $(dk version --format '{{.Server.Version}}') (Debian), client $(dk version --format '{{.Client.Version}}'), $(containerd --version | awk '{ print "containerd", $3 }'), $(runc --version | head -1); $dk_driver, cgroupfs, cgroup parent /$bench_id; own socket, data root, exec root and containerd namespace; --bridge=none --iptables=false; not running between its memory windows"
else
  echo "- dockerd: not measured (BENCH_DOCKER=0)"
fi
echo "- image: bench/busybox:1, the rootfs of _build/busybox-bundle (Debian busybox-static) imported as one layer ($(awk -v b="$tar_size" 'BEGIN { printf "%.1f MiB", b / 1048576 }') tar), CMD [\"sh\"], the same tarball for every engine"
echo "- **every container runs with \`--network none\`** (berth has no bridge networking yet)"
[ -n "${BENCH_PRIVATE_NS:-}" ] && echo "- fix applied: private mount namespace with an empty file over $ctrl (host lists: ${BENCH_PRIVATE_NS% }), for crun's hybrid-mode check (podman's runtime); all engines run in it"
echo

# --- 1. run --rm IMAGE true, interleaved
: > "$tmp/times"
for ((r = 1 - warmup; r <= runs; r++)); do
  label=$r; [ "$r" -le 0 ] && label=warmup
  for ((k = 0; k < ne; k++)); do
    e=${engines[(k + r + 2 * ne) % ne]}
    t0=$(now)
    rc=0; run_ctr "$e" --rm "$image" true >"$tmp/run.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$tmp/run.log" >&2; die "$e: run --rm $image true exited $rc"; }
    t1=$(now)
    [ "$label" = warmup ] || echo "$label $e $((t1 - t0))" >> "$tmp/times"
  done
done
log "run --rm: $runs rounds done"
for e in "${engines[@]}"; do
  n=$(ids_of "$e" | wc -l)
  if [ "$n" != 0 ]; then
    notes+=("$e: $n containers still listed right after the last \`run --rm\` returned")
    for ((i = 0; i < 100; i++)); do [ "$(ids_of "$e" | wc -l)" = 0 ] && break; sleep 0.1; done
    [ "$(ids_of "$e" | wc -l)" = 0 ] || die "$e: containers left after run --rm: $(ids_of "$e" | tr '\n' ' ')"
  fi
done
if x=$(berth_leftovers); then :; else notes+=("berth after \`run --rm\`: $x"); fi

stats_ms() { # engine -> "median min max" in ms
  awk -v t="$1" '$2 == t { print $3 / 1000 }' "$tmp/times" | sort -n | awk '
    { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.1f %.1f %.1f\n", m, v[1], v[NR] }'
}
paired() { # peer -> median of the per-round ratios peer/berth
  awk -v t="$1" '$2 == "berth" { b[$1] = $3 } $2 == t { p[$1] = $3 } END { for (r in b) print p[r] / b[r] }' "$tmp/times" | median | xargs printf "%.2f"
}
faster_in() { awk -v t="$1" '$2 == "berth" { b[$1] = $3 } $2 == t { p[$1] = $3 } END { for (r in b) { n++; if (b[r] < p[r]) f++ } printf "%d/%d", f, n }' "$tmp/times"; }
declare -A med
echo "## \`run --rm --network none IMAGE true\`, $runs interleaved rounds (ms, whole CLI command)"
echo
echo "| engine | runs | median | min | max | engine / berth (of medians) | median of per-round ratios | berth faster in |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for e in "${engines[@]}"; do
  read -r m lo hi < <(stats_ms "$e"); med[$e]=$m
  if [ "$e" = berth ]; then echo "| berth | $runs | $m | $lo | $hi | 1.00 | - | - |"
  else echo "| $e | $runs | $m | $lo | $hi | $(ratio "$m" "${med[berth]}") | $(paired "$e") | $(faster_in "$e") rounds |"; fi
done
echo
echo "Raw (round:engine=ms): $(sort -k1,1n -k2,2 "$tmp/times" | awk '{ printf "%s%s:%s=%.1f", (NR > 1 ? ", " : ""), $1, $2, $3 / 1000 }')"
echo

# --- 2. memory per idle container
# dockerd runs only during docker's own windows here: a Go daemon hands freed heap back to the
# kernel over minutes, which would show up as memory freed in the next engine's window.
[ "$use_docker" = 1 ] && dk_stop
: > "$tmp/mem" ; : > "$tmp/pss"
for ((r = 0; r < mem_rounds; r++)); do
  for ((k = 0; k < ne; k++)); do
    e=${engines[(k + r) % ne]}
    # baseline check: for docker taken with dockerd stopped on both sides (its heap keeps some of
    # what the containers made it allocate, which is memory it added, not drift)
    base0=
    if [ "$e" = docker ]; then base0=$(sample_used); dk_start; fi
    before=$(sample_used)
    dbefore=$(pss_sum $(daemon_pids "$e"))
    for ((i = 0; i < idle_n; i++)); do
      run_ctr "$e" -d "$image" sleep 100000 >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log" >&2; die "$e: run -d failed"; }
    done
    n=$(ids_of "$e" running | wc -l)
    [ "$n" = "$idle_n" ] || die "$e: $n containers running, expected $idle_n"
    after=$(sample_used)
    mons=$(monitor_pids "$e")
    nm=$(echo "$mons" | grep -c . || true)
    [ "$nm" = "$idle_n" ] || { [ "$e" = berth ] && [ "$nm" = 1 ]; } || notes+=("$e, memory round $((r + 1)): $nm $(monitor_name "$e") processes for $idle_n containers")
    sum=0
    for p in $mons; do
      x=$(rollup "$p")
      [ -n "$x" ] || continue
      echo "$e $x" >> "$tmp/pss"; sum=$((sum + ${x%% *}))
    done
    tree=$(descendants $mons | wc -l)
    procs=$(pss_sum $(descendants $mons) $(daemon_pids "$e"))
    printf '%s' "$((r + 1)) $e $before $after $nm $sum $dbefore $procs $tree" >> "$tmp/mem"
    rm_all "$e"; wait_gone "$e"
    after_rm=$(sample_used)
    base1=$after_rm
    if [ "$e" = docker ]; then dk_stop; base1=$(sample_used); fi
    echo " $after_rm ${base0:-$before} $base1" >> "$tmp/mem"
    log "memory round $((r + 1)): $e: $(( (after - before) / idle_n )) KiB per container"
  done
done
if x=$(berth_leftovers); then :; else notes+=("berth after the idle containers' rm -f: $x"); fi

mib() { awk -v k="$1" 'BEGIN { if (k == "nan" || k == "") print "-"; else printf "%.2f", k / 1024 }'; }
declare -A per_ctr per_ctr_all n_steady mon_med mon_share proc_ctr
echo "## Memory per idle container ($idle_n idle \`run -d ... sleep 100000\` per engine, rounds: $mem_rounds; MiB)"
echo
echo "- *host, added*: host used memory (MemTotal - MemAvailable, /proc/meminfo) with the $idle_n containers minus before them, divided by $idle_n: everything the engine adds per container, kernel and page cache included. Each figure is the median of 5 samples taken once the value is steady (at least ${settle} s, then up to ${settle_max} s more until 4 samples 0.5 s apart lie within 2 MiB). Noisy on a shared machine, other sessions' memory moves too: every round is shown. *Baseline moved*: the same taken again once the containers are removed, minus before, per container (for docker: with dockerd stopped, minus before dockerd was started, as its heap keeps part of what it allocated for the containers): near 0 when the baseline held still. A round is *steady* when that is within $(mib $((steady_kib / idle_n))) MiB per container; the median is taken over the steady rounds, and a target on host memory is judged only when at least half the rounds of both engines were steady (else: inconclusive)."
echo "- *processes, added*: summed Pss (/proc/PID/smaps_rollup) of the supervisors, everything under them (the containers' processes) and the engine's daemons (docker: dockerd and its containerd; their Pss before the containers is subtracted), divided by $idle_n. User-space memory only, but steady."
echo "- *supervisor*: conmon and containerd-shim-runc-v2 run one per container; berth-monitor runs one per data root (the hub, serving every container) unless BERTH_MONITOR_HUB=0. Pss counts shared pages divided among the processes that map them, so it falls as more instances run the same binary; Pss_Anon is the private heap and stacks. *Supervisor Pss per container*: the supervisors' summed Pss divided by $idle_n."
echo
echo "| engine | host, added per container (median of steady rounds) | steady rounds | host, per round | baseline moved, per round | processes, added per container (median) | supervisor | supervisors for $idle_n containers | supervisor Pss per container | supervisor Pss, median | supervisor Pss_Anon, median | supervisor Rss, median |"
echo "| --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
for e in "${engines[@]}"; do
  per_ctr_all[$e]=$(awk -v t="$e" -v n="$idle_n" '$2 == t { print ($4 - $3) / n }' "$tmp/mem" | median)
  steady() { awk -v t="$e" -v m="$steady_kib" '$2 == t { d = $12 - $11; if (d < 0) d = -d; if (d <= m) print }' "$tmp/mem"; }
  per_ctr[$e]=$(steady | awk -v n="$idle_n" '{ print ($4 - $3) / n }' | median)
  n_steady[$e]=$(steady | wc -l)
  rounds=$(awk -v t="$e" -v n="$idle_n" '$2 == t { printf "%s%.2f", (c++ ? ", " : ""), ($4 - $3) / n / 1024 }' "$tmp/mem")
  drift=$(awk -v t="$e" -v n="$idle_n" '$2 == t { printf "%s%.2f", (c++ ? ", " : ""), ($12 - $11) / n / 1024 }' "$tmp/mem")
  proc_ctr[$e]=$(awk -v t="$e" -v n="$idle_n" '$2 == t { print ($8 - $7) / n }' "$tmp/mem" | median)
  nmon=$(awk -v t="$e" '$2 == t { print $5 }' "$tmp/mem" | median)
  mon_med[$e]=$(awk -v t="$e" '$1 == t { print $2 }' "$tmp/pss" | median)
  mon_share[$e]=$(awk -v t="$e" -v n="$idle_n" '$2 == t { print $6 / n }' "$tmp/mem" | median)
  anon_med=$(awk -v t="$e" '$1 == t { print $3 }' "$tmp/pss" | median)
  rss_med=$(awk -v t="$e" '$1 == t { print $4 }' "$tmp/pss" | median)
  echo "| $e | $(mib "${per_ctr[$e]}") | ${n_steady[$e]}/$mem_rounds | $rounds | $drift | $(mib "${proc_ctr[$e]}") | $(monitor_name "$e") | $nmon | $(mib "${mon_share[$e]}") | $(mib "${mon_med[$e]}") | $(mib "$anon_med") | $(mib "$rss_med") |"
done
echo
echo "Raw (round engine host-used-before host-used-after supervisors supervisors-Pss-sum daemons-Pss-before processes-Pss-after processes host-used-after-rm baseline-start baseline-end, KiB): $(awk '{ printf "%s%s", (NR > 1 ? "; " : ""), $0 }' "$tmp/mem")"
echo

# --- 3. N detached runs one after another
[ "$use_docker" = 1 ] && dk_start
declare -A dsec rate rmsec
for e in "${engines[@]}"; do
  t0=$(now)
  for ((i = 0; i < detach_n; i++)); do
    run_ctr "$e" -d "$image" sleep 100000 >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log" >&2; die "$e: run -d #$((i + 1)) failed"; }
  done
  t1=$(now)
  n=$(ids_of "$e" running | wc -l)
  [ "$n" = "$detach_n" ] || die "$e: $n containers running after $detach_n run -d, expected $detach_n"
  dsec[$e]=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')
  rate[$e]=$(awk -v d=$((t1 - t0)) -v n="$detach_n" 'BEGIN { printf "%.2f", n / (d / 1e6) }')
  t0=$(now); rm_all "$e"; t1=$(now); wait_gone "$e"
  rmsec[$e]=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')
  log "$detach_n run -d: $e: ${dsec[$e]} s"
done
if x=$(berth_leftovers); then :; else notes+=("berth after the detached containers' rm -f: $x"); fi
echo "## $detach_n \`run -d --network none IMAGE sleep 100000\` one after another"
echo
echo "| engine | wall time (s) | containers/s | berth rate / engine rate | \`rm -f\` of all $detach_n (s, for information) |"
echo "| --- | ---: | ---: | ---: | ---: |"
for e in "${engines[@]}"; do
  echo "| $e | ${dsec[$e]} | ${rate[$e]} | $(ratio "${rate[berth]}" "${rate[$e]}") | ${rmsec[$e]} |"
done
echo

# --- targets
echo "## Targets (issue 4)"
echo
echo "| target | figure | verdict |"
echo "| --- | --- | --- |"
if [ "$use_podman" = 1 ]; then
  x=$(ratio "${med[podman]}" "${med[berth]}")
  echo "| \`run --rm IMAGE true\` at least 3x faster than podman | podman/berth $x (per-round $(paired podman)) | $(verdict ge "$x" 3) |"
fi
if [ "$use_docker" = 1 ]; then
  x=$(ratio "${med[docker]}" "${med[berth]}")
  echo "| \`run --rm IMAGE true\` at least 5x faster than docker | docker/berth $x (per-round $(paired docker)) | $(verdict ge "$x" 5) |"
fi
echo "| berth-monitor PSS per container under 1 MiB | $(mib "${mon_share[berth]}") MiB ($(fmt "${mon_share[berth]}" %d) KiB; the process: $(mib "${mon_med[berth]}") MiB) | $(verdict lt "${mon_share[berth]}" 1024) |"
for e in podman docker; do
  [[ " ${engines[*]} " == *" $e "* ]] || continue
  v="**inconclusive** (baseline moved)"
  [ $((2 * n_steady[berth])) -ge "$mem_rounds" ] && [ $((2 * n_steady[$e])) -ge "$mem_rounds" ] && v=$(verdict lt "${per_ctr[berth]}" "${per_ctr[$e]}")
  echo "| memory added per idle container below $e's (host) | berth $(mib "${per_ctr[berth]}") MiB, $e $(mib "${per_ctr[$e]}") MiB (medians of steady rounds: berth ${n_steady[berth]}/$mem_rounds, $e ${n_steady[$e]}/$mem_rounds; of all rounds: $(mib "${per_ctr_all[berth]}"), $(mib "${per_ctr_all[$e]}")) | $v |"
  echo "| memory added per idle container below $e's (processes' Pss) | berth $(mib "${proc_ctr[berth]}") MiB, $e $(mib "${proc_ctr[$e]}") MiB | $(verdict lt "${proc_ctr[berth]}" "${proc_ctr[$e]}") |"
done
if [ "$use_podman" = 1 ]; then
  x=$(ratio "${rate[berth]}" "${rate[podman]}")
  echo "| $detach_n \`run -d\` at least 2x podman's rate | berth ${rate[berth]}/s, podman ${rate[podman]}/s: $x | $(verdict ge "$x" 2) |"
fi
echo
if [ ${#notes[@]} -gt 0 ]; then
  echo "Notes:"
  for n in "${notes[@]}"; do echo "- $n"; done
  echo
fi
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
