#!/usr/bin/env bash
# The README's first command ends here: the busybox image the project builds is imported into
# a demo data root, and a real container runs from it with `berth run`, showing its isolation
# (pid 1, hostname, mount table, cgroup limits, capabilities). The data root is removed after.
set -euo pipefail
berth=$(realpath -s "$1"); bundle=$2
root=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap '"$berth" --root "$root" rm -f berth-demo >/dev/null 2>&1 || true; rm -rf "$root" /run/berth/rt-*-demo-unused 2>/dev/null || true' EXIT
bash "$(dirname "$0")/mkbusybox-image.sh" "$berth" "$bundle" "$root"
"$berth" --root "$root" images
"$berth" --root "$root" run --rm --name berth-demo --hostname berth-demo -m 64m --pids-limit 64 --cpus 0.5 busybox sh -c '
echo "my pid: $$"; echo "hostname: $(hostname)"; echo "processes:"; ps
echo "mounts:"; cat /proc/self/mounts
echo "cgroup limits:"
cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null ||
  cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max
echo "capabilities:"; grep Cap /proc/self/status'
