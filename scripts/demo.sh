#!/usr/bin/env bash
# Runs one real container from the busybox bundle with limits, and prints what it sees:
# its pid, hostname, mount table, cgroup limits and capabilities.
set -euo pipefail
rt=$(realpath -s "$1"); bundle=$2
demo=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
ln -s "$(realpath "$bundle/rootfs")" "$demo/rootfs"
jq '.hostname="berth-demo"
  | .linux.resources.memory={"limit":67108864}
  | .linux.resources.pids={"limit":64}
  | .linux.resources.cpu={"quota":50000,"period":100000}
  | .process.args=["sh","-c","echo \"my pid: $$\"; echo \"hostname: $(hostname)\"; echo \"processes:\"; ps; echo \"mounts:\"; cat /proc/self/mounts; echo \"cgroup limits:\"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; echo \"capabilities:\"; grep Cap /proc/self/status"]' \
  "$bundle/config.json" > "$demo/config.json"
root=$(mktemp -d /tmp/berth-demo-state.XXXXXX)
"$rt" --root "$root" run --bundle "$demo" "berth-demo-$$"
rmdir "$root"
