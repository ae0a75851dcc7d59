#!/usr/bin/env bash
# Cold pull + unpack of a Debian minbase image from a local registry: berth vs podman vs skopeo,
# same machine, same run, interleaved (DESIGN.md section 5, row 5; issue 3: "at most 0.7x the
# best peer's time"). Then the disk used by 10 images that share one base.
#
#   make build && bash bench/pull.sh
#   BENCH_RUNS=11 bash bench/pull.sh
#
# Environment:
#   BENCH_RUNS     measured rounds (default 7); every round pulls once with every tool
#   BENCH_WARMUP   warm-up rounds, not counted (default 1)
#   BENCH_DOCKER   0 to leave dockerd out even when it is installed
#   BERTH          berth binary (default bin/berth)
#   BENCH_MINBASE  the rootfs tarball (default _build/minbase.tar, made with debootstrap when
#                  missing and reused after that; delete it to rebuild)
#
# What it does:
#  1. The test image. `debootstrap --variant=minbase bookworm` from the apt mirror this machine
#     is configured with (read from /etc/apt/sources.list{,.d/*}; deb822 `URIs:` too), packed
#     with `tar --numeric-owner --xattrs` into _build/minbase.tar (cached). It is gzipped
#     (`gzip -n`, level 6, into _build/minbase.tar.gz) and `berth import`ed: import keeps gzip
#     input as given, so the registry holds a one-layer image with a gzip layer, as a registry
#     normally would. A Debian docker-registry (distribution) is started on a free 127.0.0.1
#     port with a temporary storage dir, and berth pushes the image there.
#  2. Cold pull, fresh empty store every run, tools interleaved (the order rotates each round):
#       berth   `berth --root <new dir> pull -q localhost:PORT/bench/debian:minbase`
#       podman  `podman --root <new> --runroot <new> --storage-driver overlay pull -q
#               --tls-verify=false ...` (vfs if overlay does not work here)
#       docker  `docker pull -q ...` against a dockerd started for that run alone (own socket,
#               data root and exec root under the temp dir; started and stopped outside the
#               clock); only when dockerd is installed, BENCH_DOCKER=0 skips it
#       skopeo  `skopeo copy --src-tls-verify=false docker://... oci:<new dir>:minbase`:
#               download only, no unpack, so it is a floor for the transfer, not an unpack peer
#     The clock covers the whole command (process start to exit). Each run is checked (berth
#     and podman list the image and berth's snapshot holds /usr/bin/bash; skopeo wrote
#     index.json), then its store is removed outside the clock. The page cache is not dropped
#     (shared machine); the warm-up round puts the registry's blob and the binaries in it for
#     every tool alike.
#  3. Sharing: 9 images are derived from the base (base layer + one small layer each), built
#     as docker-archives from `berth save` of the base, `berth load`ed and pushed. One fresh
#     berth root pulls the base alone, another pulls all 10; `du` of both. podman does the same
#     for comparison.
# Everything goes into one temp dir that is removed at exit, with the registry killed by PID
# and any mount left under the temp dir unmounted.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
repo=$PWD

die() { echo "bench/pull.sh: $*" >&2; exit 1; }
log() { echo "bench/pull.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"

runs=${BENCH_RUNS:-7}
warmup=${BENCH_WARMUP:-1}
berth=$(realpath -s "${BERTH:-$repo/bin/berth}")
minbase=$(realpath -m "${BENCH_MINBASE:-$repo/_build/minbase.tar}")

# --- prerequisites
need=()
for c in podman skopeo docker-registry debootstrap jq curl; do
  command -v "$c" >/dev/null || need+=("$c")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing what is missing (${need[*]}): scripts/install-deps.sh bench"
  bash scripts/install-deps.sh bench
fi
[ -x "$berth" ] || die "$berth missing: run make build"

tmp=$(mktemp -d /tmp/berth-pullbench.XXXXXX)
reg_pid= dk_pid=
umount_under() { # unmount everything mounted at or below $1, deepest first
  local m
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
  local rc=$?
  dk_stop
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null; wait "$reg_pid" 2>/dev/null || true; fi
  umount_under "$tmp"
  [ -n "${bootstrap_dir:-}" ] && umount_under "$bootstrap_dir" && rm -rf "$bootstrap_dir"
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the test image
bash "$repo/scripts/mkminbase.sh" "$minbase"
minbase_gz=$minbase.gz

# --- the registry
port=
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 30000))
  [ -z "$(ss -Htln "sport = :$p")" ] && { port=$p; break; }
done
[ -n "$port" ] || die "no free port"
mkdir -p "$tmp/registry"
cat > "$tmp/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$tmp/registry/config.yml" > "$tmp/registry/log" 2>&1 &
reg_pid=$!
for _ in $(seq 200); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
  kill -0 "$reg_pid" 2>/dev/null || { cat "$tmp/registry/log" >&2; die "docker-registry exited"; }
  sleep 0.05
done
curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || die "docker-registry did not answer on 127.0.0.1:$port"
reg=localhost:$port
ref=$reg/bench/debian:minbase

seed=$tmp/seed
"$berth" --root "$seed" import "$minbase_gz" "$ref" >/dev/null
"$berth" --root "$seed" push -q "$ref" >/dev/null
accept='application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json'
manifest() { curl -fsS -H "Accept: $accept" "http://127.0.0.1:$port/v2/$1/manifests/$2"; }
base_manifest=$(manifest bench/debian minbase)
[ "$(jq '.layers | length' <<<"$base_manifest")" = 1 ] || die "expected a one-layer image: $base_manifest"
layer_type=$(jq -r '.layers[0].mediaType' <<<"$base_manifest")
layer_digest=$(jq -r '.layers[0].digest' <<<"$base_manifest")
layer_size=$(jq -r '.layers[0].size' <<<"$base_manifest")
case "$layer_type" in
  *gzip) ;;
  *) log "note: the pushed layer is not gzip-compressed ($layer_type)" ;;
esac
tar_size=$(stat -c %s "$minbase")
tar_entries=$(tar -tf "$minbase" | wc -l)
tar_files=$(tar -tvf "$minbase" | grep -c '^-' || true)

# --- dockerd, when installed: a new daemon (own socket, data root, exec root) for every run,
# started and stopped outside the clock, so each pull starts from an empty store.
use_docker=0 docker_why="dockerd or the docker client is not installed"
if [ "${BENCH_DOCKER:-1}" = 0 ]; then docker_why="BENCH_DOCKER=0"
elif command -v dockerd >/dev/null && command -v docker >/dev/null; then use_docker=1; fi
dk_start() { # dir
  mkdir -p "$1"
  dockerd --data-root "$1/data" --exec-root "$1/exec" --pidfile "$1/pid" -H "unix://$1/sock" \
    --bridge=none --iptables=false --ip6tables=false \
    --containerd-namespace berth-pullbench --containerd-plugins-namespace berth-pullbench-plugins >"$1/dockerd.log" 2>&1 &
  dk_pid=$!
  for _ in $(seq 300); do
    docker -H "unix://$1/sock" version >/dev/null 2>&1 && return 0
    kill -0 "$dk_pid" 2>/dev/null || break
    sleep 0.05
  done
  tail -20 "$1/dockerd.log" >&2; die "dockerd did not start"
}
dk_stop() {
  [ -n "${dk_pid:-}" ] || return 0
  kill "$dk_pid" 2>/dev/null; wait "$dk_pid" 2>/dev/null || true; dk_pid=
}

# --- environment
# The binary's own version (the commit it was built from, -dirty when the tree had changes) and
# its mtime: others may rebuild bin/berth while this runs, and the tree's HEAD would not say so.
commit="$("$berth" --version | awk '{ print $NF }'), binary of $(date -u -r "$berth" '+%F %T UTC')"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "## Environment"
echo
echo "- kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- store on $(stat -fc %T "$tmp") ($(df --output=source "$tmp" | tail -1))"
echo "- berth $commit; $(podman --version); $(skopeo --version | cut -d' ' -f1-3); docker-registry $(dpkg-query -W -f='${Version}' docker-registry)"
if [ "$use_docker" = 1 ]; then
  echo "- dockerd $(dockerd --version | cut -d' ' -f3 | tr -d ,) (its own socket, data root and exec root per run; client $(docker --version | cut -d' ' -f3 | tr -d ,))"
else
  echo "- dockerd: not measured ($docker_why)"
fi
echo "- image: $ref, Debian bookworm minbase, one layer: $(mib "$tar_size") uncompressed ($tar_entries tar entries, $tar_files regular files), $(mib "$layer_size") compressed ($layer_type, gzip -6)"
echo "- rounds: $warmup warm-up + $runs measured, tools interleaved, order rotated each round"
echo

# --- 2. cold pull, interleaved
podman_driver=overlay
pm() { local d=$1; shift; podman --root "$d/root" --runroot "$d/run" --tmpdir "$d/tmp" \
  --storage-driver "$podman_driver" --events-backend none --cgroup-manager cgroupfs "$@"; }
probe=$tmp/podman-probe
if ! pm "$probe" info >"$tmp/probe.log" 2>&1; then
  log "podman with overlay failed, using vfs: $(tail -3 "$tmp/probe.log")"
  podman_driver=vfs
  umount_under "$probe"; rm -rf "$probe"
  pm "$probe" info >"$tmp/probe.log" 2>&1 || { cat "$tmp/probe.log" >&2; die "podman does not work"; }
fi
umount_under "$probe"; rm -rf "$probe"

now() { local t=${EPOCHREALTIME/./}; echo "$t"; } # microseconds
run_one() { # tool round-label -> appends "tool micros" to $tmp/times when label is not warm-up
  local tool=$1 label=$2 d t0 t1
  d=$(mktemp -d "$tmp/run.$tool.XXXXXX")
  case $tool in
    berth)
      t0=$(now); "$berth" --root "$d" pull -q "$ref" >"$d.log" 2>&1 || { cat "$d.log" >&2; die "berth pull failed"; }; t1=$(now)
      [ -n "$("$berth" --root "$d" images -q)" ] || die "berth: no image after pull"
      [ -n "$(find "$d" -path '*/usr/bin/bash' -type f -print -quit)" ] || die "berth: /usr/bin/bash not unpacked"
      ;;
    podman)
      t0=$(now); pm "$d" pull -q --tls-verify=false "$ref" >"$d.log" 2>&1 || { cat "$d.log" >&2; die "podman pull failed"; }; t1=$(now)
      [ -n "$(pm "$d" images -q)" ] || die "podman: no image after pull"
      pm "$d" system reset -f >/dev/null 2>&1 || true
      ;;
    docker)
      dk_start "$d"
      t0=$(now); docker -H "unix://$d/sock" pull -q "$ref" >"$d.log" 2>&1 || { cat "$d.log" >&2; die "docker pull failed"; }; t1=$(now)
      [ -n "$(docker -H "unix://$d/sock" images -q)" ] || die "docker: no image after pull"
      dk_stop
      ;;
    skopeo)
      t0=$(now); skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$d/oci:minbase" >"$d.log" 2>&1 ||
        { cat "$d.log" >&2; die "skopeo copy failed"; }; t1=$(now)
      [ -s "$d/oci/index.json" ] || die "skopeo: no index.json"
      ;;
  esac
  umount_under "$d"; rm -rf "$d" "$d.log"
  [ "$label" = warmup ] || echo "$label $tool $((t1 - t0))" >> "$tmp/times"
}
tools=(berth podman skopeo)
[ "$use_docker" = 1 ] && tools=(berth podman docker skopeo)
: > "$tmp/times"
for ((r = 1 - warmup; r <= runs; r++)); do
  label=$r; [ "$r" -le 0 ] && label=warmup
  for ((k = 0; k < ${#tools[@]}; k++)); do
    run_one "${tools[(k + r + ${#tools[@]}) % ${#tools[@]}]}" "$label"
  done
  log "round $label done"
done
[ -z "$(awk -v p="$tmp" 'index($5, p "/run.") == 1' /proc/self/mountinfo)" ] || die "mounts left under $tmp"

stats() { # tool -> "median min max" in seconds
  awk -v t="$1" '$2 == t { print $3 }' "$tmp/times" | sort -n | awk '
    { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.3f %.3f %.3f\n", m / 1e6, v[1] / 1e6, v[NR] / 1e6 }'
}
read -r b_med b_min b_max < <(stats berth)
read -r p_med p_min p_max < <(stats podman)
read -r s_med s_min s_max < <(stats skopeo)
best=$p_med best_name=podman
if [ "$use_docker" = 1 ]; then
  read -r d_med d_min d_max < <(stats docker)
  if awk -v a="$d_med" -v b="$p_med" 'BEGIN { exit !(a < b) }'; then best=$d_med best_name=docker; fi
fi
paired() { # peer -> median of the per-round ratios berth/peer
  awk -v t="$1" '$2 == "berth" { b[$1] = $3 } $2 == t { p[$1] = $3 }
    END { for (r in b) print b[r] / p[r] }' "$tmp/times" | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "## Cold pull + unpack, $runs interleaved rounds (seconds, whole command)"
echo
echo "| tool | what it does | median | min | max | berth / tool (of medians) |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
echo "| berth | pull + verify + unpack into its snapshot store | $b_med | $b_min | $b_max | 1.00 |"
echo "| podman $(podman --version | cut -d' ' -f3) | pull + unpack ($podman_driver storage) | $p_med | $p_min | $p_max | $(ratio "$b_med" "$p_med") |"
[ "$use_docker" = 1 ] && echo "| docker $(dockerd --version | cut -d' ' -f3 | tr -d ,) | pull + unpack (overlay2) | $d_med | $d_min | $d_max | $(ratio "$b_med" "$d_med") |"
echo "| skopeo $(skopeo --version | cut -d' ' -f3) | download only to an OCI dir, **no unpack** | $s_med | $s_min | $s_max | $(ratio "$b_med" "$s_med") |"
echo
echo "berth / best unpacking peer ($best_name): $(ratio "$b_med" "$best") of medians. Median of per-round ratios: berth / podman $(paired podman)$([ "$use_docker" = 1 ] && echo ", berth / docker $(paired docker)"). Target: at most 0.70 of the best peer."
echo
echo "Raw (round:tool=seconds): $(sort -k1,1n -k2,2 "$tmp/times" | awk '{ printf "%s%s:%s=%.3f", (NR > 1 ? ", " : ""), $1, $2, $3 / 1e6 }')"
echo

# --- 3. ten images sharing one base
share=$tmp/share
mkdir -p "$share/base"
"$berth" --root "$seed" save -o "$share/base.tar" "$ref"
tar -C "$share/base" -xf "$share/base.tar"
base_cfg=$(jq -r '.[0].Config' "$share/base/manifest.json")
base_layers=$(jq -c '.[0].Layers' "$share/base/manifest.json")
refs=("$ref")
for i in $(seq 1 9); do
  d=$share/d$i
  mkdir -p "$d/blobs/sha256" "$d/layer/etc"
  ln "$share/base/$base_cfg" "$d/base-config.json"
  for l in $(jq -r '.[]' <<<"$base_layers"); do mkdir -p "$d/$(dirname "$l")"; ln "$share/base/$l" "$d/$l"; done
  printf 'derived image %s\n' "$i" > "$d/layer/etc/bench-derived"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d/layer" -cf "$d/layer.tar" etc/bench-derived
  diff_id=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  mv "$d/layer.tar" "$d/blobs/sha256/$diff_id"
  jq -c --arg d "sha256:$diff_id" --arg i "$i" '
    .rootfs.diff_ids += [$d]
    | .history = ((.history // []) + [{ created: "1970-01-01T00:00:00Z", created_by: ("bench/pull.sh derived layer " + $i) }])' \
    "$d/base-config.json" > "$d/config.json"
  cfg=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/blobs/sha256/$cfg"; rm "$d/base-config.json"
  dref=$reg/bench/derived$i:minbase
  jq -nc --arg c "blobs/sha256/$cfg" --arg t "$dref" --argjson l "$base_layers" --arg n "blobs/sha256/$diff_id" \
    '[{ Config: $c, RepoTags: [$t], Layers: ($l + [$n]) }]' > "$d/manifest.json"
  tar -C "$d" -cf "$d.tar" manifest.json blobs
  "$berth" --root "$seed" load -i "$d.tar" >/dev/null
  "$berth" --root "$seed" push -q "$dref" >/dev/null
  m=$(manifest "bench/derived$i" minbase)
  [ "$(jq -r '.layers[0].digest' <<<"$m")" = "$layer_digest" ] ||
    die "derived$i does not reference the base blob $layer_digest: $m"
  refs+=("$dref")
  rm -rf "$d" "$d.tar"
done
kib() { du -sk "$1" | cut -f1; }
one=$share/berth-one ten=$share/berth-ten
"$berth" --root "$one" pull -q "$ref" >/dev/null
for x in "${refs[@]}"; do "$berth" --root "$ten" pull -q "$x" >/dev/null; done
[ "$("$berth" --root "$ten" images -q --no-trunc | sort -u | wc -l)" = 10 ] || die "berth: expected 10 images in $ten"
"$berth" --root "$ten" system check >"$share/check.log" 2>&1 || { cat "$share/check.log" >&2; die "berth system check failed"; }
b_one=$(kib "$one") b_ten=$(kib "$ten")
pone=$share/podman-one pten=$share/podman-ten
pm "$pone" pull -q --tls-verify=false "$ref" >/dev/null 2>&1
for x in "${refs[@]}"; do pm "$pten" pull -q --tls-verify=false "$x" >/dev/null 2>&1; done
p_one=$(kib "$pone/root") p_ten=$(kib "$pten/root")
mibk() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo "## Disk used by 10 images sharing one base (du -sk of the whole store)"
echo
echo "The base plus 9 images derived from it (base layer + one 1-file layer each), pulled into one fresh store."
echo
echo "| store | 1 image (base) | 10 images | 10 x 1 image (no sharing) |"
echo "| --- | ---: | ---: | ---: |"
echo "| berth | $(mibk "$b_one") | $(mibk "$b_ten") | $(mibk $((b_one * 10))) |"
echo "| podman ($podman_driver) | $(mibk "$p_one") | $(mibk "$p_ten") | $(mibk $((p_one * 10))) |"
echo
echo "berth, 10 images, by top-level dir: $(du -sk "$ten"/* | while read -r k p; do printf "%s %s; " "${p##*/}" "$(mibk "$k")"; done)\`system check\`: ok"
echo
echo '```'
"$berth" --root "$ten" system df
echo '```'
for x in "$pone" "$pten"; do pm "$x" system reset -f >/dev/null 2>&1 || true; done
