#!/usr/bin/env bash
# Bare OCI runtime `run` of /bin/true: berth-runtime vs runc vs crun, same machine, same run.
#
#   make bench                  # = make build bundle && bash bench/runtime.sh
#   BENCH_RUNS=50 bash bench/runtime.sh
#
# Environment:
#   BENCH_RUNS      measured runs per runtime (default 30, at least 20 recommended)
#   BENCH_WARMUP    warm-up runs per runtime, not counted (default 3)
#   BENCH_RSS_RUNS  runs per runtime under GNU time for peak RSS (default 10, 0 to skip)
#   BERTH_RUNTIME   berth-runtime binary (default bin/berth-runtime)
#   BERTH_BUNDLE    source bundle (default _build/busybox-bundle, from `make bundle`)
#
# What it does: copies the bundle (same rootfs and config.json for all three runtimes, only
# process.args=["/bin/true"] and terminal=false set), gives every runtime its own temporary
# --root, then bench/cmd/runbench runs `X --root R run --bundle B <unique id>` interleaved
# round-robin (berth, runc, crun, berth, ...) after warm-up, checks every run exited 0 and left
# no state or cgroup behind, and prints medians, p90, min/max, ratios and peak RSS as Markdown.
#
# Two environment fixes, both applied to all three runtimes alike and printed when applied:
#  - crun refuses to run on a cgroup v1/v2 hybrid host whose cgroup2 mount lists any controller
#    ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"; hosts of this
#    kind show `hugetlb` there). The benchmark then runs in a private mount namespace in which
#    an empty file is bind-mounted over /sys/fs/cgroup/unified/cgroup.controllers. Nothing else
#    reads that file here: berth and runc detect the mode with statfs. The host is unchanged.
#  - if a runtime rejects the config, its error is printed and ociVersion is lowered step by
#    step (crun 1.8 accepts at most 1.1.x) until all three accept it.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
repo=$PWD

die() { echo "bench/runtime.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"

runs=${BENCH_RUNS:-30}
warmup=${BENCH_WARMUP:-3}
rss_runs=${BENCH_RSS_RUNS:-10}
berth=$(realpath -s "${BERTH_RUNTIME:-$repo/bin/berth-runtime}")
src_bundle=$(realpath "${BERTH_BUNDLE:-$repo/_build/busybox-bundle}")

cgroup_mode() {
  case "$(stat -fc %T /sys/fs/cgroup)" in
    cgroup2fs) echo unified ;;
    *) if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo hybrid; else echo legacy; fi ;;
  esac
}

# --- the crun hybrid-mode workaround: re-run this script in a private mount namespace
ctrl=/sys/fs/cgroup/unified/cgroup.controllers
if [ -z "${BENCH_PRIVATE_NS:-}" ] && [ "$(cgroup_mode)" = hybrid ] && [ -n "$(tr -d "[:space:]" < "$ctrl")" ]; then
  BENCH_PRIVATE_NS="$(tr '\n' ' ' < "$ctrl")" exec unshare --mount --propagation private bash "$self" "$@"
fi

# --- prerequisites
need=()
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
command -v jq >/dev/null || need+=(jq)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench/runtime.sh: installing ${need[*]} (scripts/install-deps.sh bench)" >&2
  bash scripts/install-deps.sh bench
fi
[ -x "$berth" ] || die "$berth missing: run make build"
[ -f "$src_bundle/config.json" ] && [ -x "$src_bundle/rootfs/bin/busybox" ] || die "$src_bundle missing: run make bundle"

tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
  # After a failed run: delete whatever a runtime left in its state root, then the temp dir.
  local spec name bin d
  for spec in "${rts[@]}"; do
    name=${spec%%=*} bin=${spec#*=}
    for d in "$tmp/state/$name"/* "$tmp/probe-root"/*; do
      [ -d "$d" ] && "$bin" --root "$(dirname "$d")" delete --force "$(basename "$d")" >/dev/null 2>&1
    done
  done
  rm -rf "$tmp"
}
rts=(berth="$berth" runc="$(command -v runc)" crun="$(command -v crun)")
trap cleanup EXIT

fixes=()
if [ -n "${BENCH_PRIVATE_NS:-}" ]; then
  : > "$tmp/empty-controllers"
  mount --bind "$tmp/empty-controllers" "$ctrl"
  fixes+=("private mount namespace: empty file over $ctrl (host lists: ${BENCH_PRIVATE_NS% }), for crun's hybrid-mode check")
fi

# --- helper, bundle, state roots
(cd "$repo" && CGO_ENABLED=0 go build -o "$tmp/runbench" ./bench/cmd/runbench)
cp -a "$src_bundle" "$tmp/bundle"
jq '.process.args=["/bin/true"] | .process.terminal=false' "$src_bundle/config.json" > "$tmp/bundle/config.json"
mkdir -p "$tmp/state"

# --- probe: every runtime must run the config once; lower ociVersion if one rejects it
probe() {
  local ok=0 spec name bin
  for spec in "${rts[@]}"; do
    name=${spec%%=*} bin=${spec#*=}
    mkdir -p "$tmp/probe-root"
    if ! "$bin" --root "$tmp/probe-root" run --bundle "$tmp/bundle" "probe-$$-$name" </dev/null >"$tmp/probe.out" 2>&1; then
      echo "bench/runtime.sh: probe: $name fails with ociVersion $(jq -r .ociVersion "$tmp/bundle/config.json"): $(head -c 300 "$tmp/probe.out")" >&2
      "$bin" --root "$tmp/probe-root" delete --force "probe-$$-$name" >/dev/null 2>&1 || true
      ok=1
    fi
  done
  return $ok
}
orig_version=$(jq -r .ociVersion "$tmp/bundle/config.json")
if ! probe; then
  fixed=
  for v in 1.2.0 1.1.0 1.0.2; do
    [ "$(printf '%s\n%s\n' "$v" "$orig_version" | sort -V | head -1)" = "$v" ] && [ "$v" != "$orig_version" ] || continue
    jq --arg v "$v" '.ociVersion=$v' "$tmp/bundle/config.json" > "$tmp/c.json" && mv "$tmp/c.json" "$tmp/bundle/config.json"
    if probe; then fixed=$v; break; fi
  done
  [ -n "$fixed" ] || die "a runtime rejects the bundle at every ociVersion tried (errors above)"
  fixes+=("config.json: ociVersion $orig_version -> $fixed for all three (crun $(crun --version | awk 'NR==1{print $3}') rejects newer: \"unknown version specified\")")
fi
rmdir "$tmp/probe-root"

# --- environment
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$repo" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit+=" (working tree modified)"; fi
echo "## Bare runtime \`run\` of /bin/true"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- host: $(uname -srm), $(nproc) CPUs ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- cgroup mode: $(cgroup_mode)"
echo "- berth: commit $commit, \`$(basename "$berth") --version\`: $("$berth" --version | head -1)"
echo "- runc: $(runc --version | head -1) ($(runc --version | sed -n 's/^commit: //p'))"
echo "- crun: $(crun --version | head -1) (commit $(crun --version | sed -n 's/^commit: //p'))"
echo "- bundle: copy of ${src_bundle#"$repo"/} (busybox-static rootfs, config.json of \`berth-runtime spec\`), process.args=[\"/bin/true\"], terminal=false, ociVersion $(jq -r .ociVersion "$tmp/bundle/config.json"), namespaces: $(jq -r '[.linux.namespaces[].type]|join(",")' "$tmp/bundle/config.json"), $(jq '.mounts|length' "$tmp/bundle/config.json") mounts, $(jq '.linux.maskedPaths|length' "$tmp/bundle/config.json") masked + $(jq '.linux.readonlyPaths|length' "$tmp/bundle/config.json") read-only paths, seccomp: $(jq -r 'if .linux.seccomp then "yes" else "none" end' "$tmp/bundle/config.json")"
echo "- method: \`X --root R run --bundle B <unique id>\` per run, own temporary --root per runtime, interleaved round-robin berth, runc, crun; $warmup warm-up + $runs measured runs each; wall clock fork-to-wait in Go (time.Now); every run checked exit 0 and deleted (state root and cgroups empty at the end); peak RSS: \`/usr/bin/time -f %M\`, $rss_runs more interleaved runs each"
for f in "${fixes[@]}"; do echo "- fix applied: $f"; done
echo

"$tmp/runbench" -bundle "$tmp/bundle" -state "$tmp/state" -runs "$runs" -warmup "$warmup" -rss-runs "$rss_runs" "${rts[@]/#/-rt=}"
echo
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
