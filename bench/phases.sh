#!/usr/bin/env bash
# Where the time of a bare `run` of /bin/true goes, from the outside: kernel tracepoints
# (perf record on the run loop and its descendants only: low overhead, no ptrace) over N runs
# of each runtime, reduced to the median time since exec of the runtime at which each
# milestone is reached. PHASES_KEEP=1 keeps the perf data and per-run rows in /tmp.
#
#   bash bench/phases.sh            # N=20, berth runc crun
#   PHASES_RUNS=50 PHASES_RUNTIMES="berth crun" bash bench/phases.sh
#
# Milestones (first occurrence after exec of the runtime, in ms):
#   init_exec   berth only: the container init exec'd (/proc/self/fd/N, the sealed binary)
#   unshare     first unshare(2) of the run (namespaces created)
#   ctr_mount   first mount/open_tree/fsmount by a process other than the runtime's main one
#   pivot_root  pivot_root(2)
#   exec_true   the container's /bin/true exec'd
#   true_exit   /bin/true exited
#   end         the runtime's main thread exited
# Needs perf (Debian: linux-perf) and root; uses the same bundle preparation and crun hybrid-mode
# workaround as bench/runtime.sh (see there).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
repo=$PWD
die() { echo "bench/phases.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
command -v perf >/dev/null || die "perf missing (apt-get install linux-perf)"
n=${PHASES_RUNS:-20}
want=${PHASES_RUNTIMES:-berth runc crun}
berth=$(realpath -s "${BERTH_RUNTIME:-$repo/bin/berth-runtime}")
src_bundle=$(realpath "${BERTH_BUNDLE:-$repo/_build/busybox-bundle}")
[ -x "$berth" ] && [ -f "$src_bundle/config.json" ] || die "run make build bundle first"

ctrl=/sys/fs/cgroup/unified/cgroup.controllers
if [ -z "${BENCH_PRIVATE_NS:-}" ] && [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] &&
  [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && [ -n "$(tr -d '[:space:]' < "$ctrl")" ]; then
  BENCH_PRIVATE_NS=1 exec unshare --mount --propagation private bash "$self" "$@"
fi
tmp=$(mktemp -d /tmp/berth-phases.XXXXXX)
trap '[ -n "${PHASES_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"' EXIT
if [ -n "${BENCH_PRIVATE_NS:-}" ]; then
  : > "$tmp/empty"
  mount --bind "$tmp/empty" "$ctrl"
fi
cp -a "$src_bundle" "$tmp/bundle"
# ociVersion 1.1.0: the newest crun 1.8 accepts (bench/runtime.sh finds this by probing).
jq '.process.args=["/bin/true"] | .process.terminal=false | .ociVersion="1.1.0"' "$src_bundle/config.json" > "$tmp/bundle/config.json"

events=sched:sched_process_exec,sched:sched_process_exit
for s in unshare pivot_root mount open_tree fsmount; do events+=,syscalls:sys_enter_$s; done

echo "median ms since exec of the runtime, $n runs each ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '| runtime | init_exec | unshare | ctr_mount | pivot_root | exec_true | true_exit | end |\n'
printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for name in $want; do
  case $name in
    berth) bin=$berth ;;
    *) bin=$(command -v "$name") || die "$name missing" ;;
  esac
  mkdir -p "$tmp/root-$name"
  cat > "$tmp/loop.sh" <<EOF
#!/bin/bash
for i in \$(seq 1 $n); do "$bin" --root "$tmp/root-$name" run --bundle "$tmp/bundle" ph-$name-\$i || exit 1; done
EOF
  perf record -q -o "$tmp/$name.data" -e "$events" bash "$tmp/loop.sh" >/dev/null 2>&1 || die "$name: a run failed"
  perf script -i "$tmp/$name.data" -F comm,pid,tid,time,event,trace 2>/dev/null |
    awk -v exe="filename=$bin " '
      function flush() { if (t0 != "") print r["init_exec"]+0, r["unshare"]+0, r["ctr_mount"]+0, r["pivot_root"]+0, r["exec_true"]+0, r["true_exit"]+0, r["end"]+0 }
      function mark(k, t) { if (!(k in r)) r[k] = sprintf("%.2f", (t - t0) * 1000) }
      {
        line = $0 " "
        split($2, p, "/"); pid = p[1]; tid = p[2]; t = $3; sub(/:$/, "", t); ev = $4
        if (ev == "sched:sched_process_exec:" && index(line, exe)) { flush(); delete r; t0 = t; main = pid; active = 1; next }
        if (!active) next
        if (ev == "sched:sched_process_exec:" && line ~ /filename=\/proc\/self\/fd\//) mark("init_exec", t)
        else if (ev == "syscalls:sys_enter_unshare:") mark("unshare", t)
        else if (ev ~ /sys_enter_(mount|open_tree|fsmount):/ && pid != main && ("unshare" in r)) mark("ctr_mount", t)
        else if (ev == "syscalls:sys_enter_pivot_root:") mark("pivot_root", t)
        else if (ev == "sched:sched_process_exec:" && line ~ /filename=\/bin\/true /) mark("exec_true", t)
        else if (ev == "sched:sched_process_exit:" && $1 == "true") mark("true_exit", t)
        else if (ev == "sched:sched_process_exit:" && tid == main) { mark("end", t); active = 0 }
      }
      END { flush() }' > "$tmp/$name.runs"
  [ "$(wc -l < "$tmp/$name.runs")" -ge 1 ] || die "$name: no runs traced"
  row="| $name"
  for col in 1 2 3 4 5 6 7; do
    med=$(cut -d' ' -f$col "$tmp/$name.runs" | sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print m}')
    if [ "$med" = 0 ]; then row+=" | -"; else row+=" | $med"; fi
  done
  echo "$row |"
done
