#!/usr/bin/env bash
# lxr vs podman (Debian's), same busybox image, on this machine:
#   1. `run --rm IMAGE true`, network none and bridge (N runs each, mean wall time)
#   2. creating 50 containers (`create`, detached, sleeping), then listing them with `ps -a`
#   3. `devcontainer up` (the Dev Containers CLI, a devDependency) of a devcontainer.json naming
#      a present image, with lxr (bin/lxr.js) and podman as its --docker-path (mean of N)
# Not part of npm test. Needs root, podman, and a built lxr (npm run build).
# Usage: bench/frontend/run.sh [N] [devcontainer]   (default 20; "devcontainer": that row only)
set -euo pipefail
unset NODE_EXTRA_CA_CERTS   # adds ~35 ms to every Node start on these machines
cd "$(dirname "$0")/../.."
N=${1:-20}
ONLY=${2:-}
WORK=$(mktemp -d /tmp/lxr-bench-fe.XXXXXX)
export LXR_ROOT=$WORK/lxr LXR_RUN_ROOT=$WORK/run LXR_NET_BRIDGE=lxrbench0 LXR_NET_SUBNET=10.214.0.0/24 LXR_NET_CONF_DIR=$WORK/net.d
IMAGE=localhost/bench/busybox:1
LXR="node bin/lxr.js"
PODMAN="podman --root $WORK/podman --runroot $WORK/podman-run --runtime runc --cgroup-manager cgroupfs"

cleanup() {
  $LXR rm -f $($LXR ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  $PODMAN rm -af -t 0 >/dev/null 2>&1 || true
  $PODMAN system reset -f >/dev/null 2>&1 || true
  ip link del lxrbench0 2>/dev/null || true
  umount -R "$WORK/podman" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v podman >/dev/null || { echo "podman is missing: apt-get install -y podman" >&2; exit 1; }
npx tsx bench/frontend/make-image.ts "$LXR_ROOT/images" "$IMAGE"
# the same layout, loaded into podman's own storage
npx tsx bench/frontend/make-image.ts "$WORK/layout" "$IMAGE"
tar -C "$WORK/layout" -cf "$WORK/image.tar" .
$PODMAN load -q -i "$WORK/image.tar" >/dev/null
PIMAGE=$($PODMAN images -q | head -1)
# the dev container's image: the busybox one plus the applets the CLI's scripts use
DIMAGE=localhost/bench/devc:1
npx tsx bench/frontend/make-image.ts "$LXR_ROOT/images" "$DIMAGE" devcontainer
npx tsx bench/frontend/make-image.ts "$WORK/dlayout" "$DIMAGE" devcontainer
tar -C "$WORK/dlayout" -cf "$WORK/dimage.tar" .
$PODMAN load -q -i "$WORK/dimage.tar" >/dev/null

. bench/frontend/timeit.sh

# a row: operation, lxr, podman, and podman/lxr (how many times as fast lxr is)
row() { printf '%-44s %10s %10s %12s\n' "$1" "$2" "$3" "$(awk -v l="$2" -v p="$3" 'BEGIN { if (l > 0) printf "%.2fx", p / l }')"; }
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %10s %10s %12s\n' "operation (mean of $N)" "lxr ms" "podman ms" "podman/lxr"

# devcontainer up: a fresh container each time (removed after, untimed); the CLI runs
# ~12 commands of its --docker-path (ps, inspect, events, run, exec ...). podman through a
# wrapper: the CLI's `run` carries no --ulimit, so the pins go in a containers.conf.
devcontainer_row() {
  local ws=$WORK/ws dc=node_modules/.bin/devcontainer
  mkdir -p "$ws/.devcontainer"
  echo "{ \"image\": \"$DIMAGE\" }" > "$ws/.devcontainer/devcontainer.json"
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' > "$WORK/containers.conf"
  printf '#!/bin/sh\nCONTAINERS_CONF=%s exec %s "$@"\n' "$WORK/containers.conf" "$PODMAN" > "$WORK/podman-devc"
  chmod +x "$WORK/podman-devc"
  # mean ms of N `devcontainer up` with lxr or podman ($1) as the CLI's docker
  up_mean() {
    local docker=$PWD/bin/lxr.js
    [ "$1" = podman ] && docker=$WORK/podman-devc
    local total=0 i t0 t1
    for ((i = 0; i <= N; i++)); do
      t0=$(now)
      $dc up --workspace-folder "$ws" --docker-path "$docker" >"$WORK/devc.out" 2>&1 || { echo "failed: devcontainer up with $1" >&2; tail -5 "$WORK/devc.out" >&2; return 1; }
      t1=$(now)
      ((i > 0)) && total=$((total + t1 - t0))   # the first is a warm-up
      if [ "$1" = lxr ]; then $LXR rm -f $($LXR ps -aq) >/dev/null 2>&1 || true; else $PODMAN rm -af -t 0 >/dev/null 2>&1 || true; fi
    done
    echo $((total / N / 1000000))
  }
  local l p
  l=$(up_mean lxr)
  p=$(up_mean podman)
  row "devcontainer up (image present)" "$l" "$p"
}
if [ "$ONLY" = devcontainer ]; then
  devcontainer_row
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
for net in none bridge; do
  l=$(timeit $LXR run --rm --network $net $IMAGE true)
  p=$(timeit $PODMAN run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network $net $PIMAGE true)
  row "run --rm --network $net IMAGE true" "$l" "$p"
done

t0=$(now); for i in $(seq 1 50); do $LXR create --network none --name l$i $IMAGE sleep 3600 >/dev/null; done; t1=$(now)
lc=$(((t1 - t0) / 1000000))
t0=$(now); for i in $(seq 1 50); do $PODMAN run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network none --name p$i $PIMAGE sleep 3600 >/dev/null; done; t1=$(now)
pc=$(((t1 - t0) / 1000000))
row "create+start 50 containers (total)" "$lc" "$pc"
# memory of what keeps the 50 containers: lxr's monitors (lxr-monitor) and podman's conmons
rss_kb() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmRSS/ {print $2}' /proc/$p/status 2>/dev/null || echo 0))); done; echo $t; }
lm=$(rss_kb $(cat "$LXR_ROOT"/containers/*/container.json | grep -o '"monitorPid": [0-9]*' | grep -o '[0-9]*$'))
pm=$(rss_kb $($PODMAN ps -q | xargs $PODMAN inspect --format '{{.State.ConmonPid}}'))
printf '%-44s %10s %10s\n' "monitors of 50 containers, total RSS (MiB)" "$((lm / 1024))" "$((pm / 1024))"
lp=$(timeit $LXR ps -a)
pp=$(timeit $PODMAN ps -a)
row "ps -a with 50 containers" "$lp" "$pp"
[ "$($LXR ps -q | wc -l)" = 50 ] || echo "warning: lxr ps does not list 50 running containers" >&2
# removing them, one command per container, in sequence
t0=$(now); for i in $(seq 1 50); do $LXR rm -f l$i >/dev/null; done; t1=$(now)
lr=$(((t1 - t0) / 1000000))
# -t 0: podman's rm -f first waits 10 s for SIGTERM (a sleep as pid 1 ignores it); lxr's kills at once
t0=$(now); for i in $(seq 1 50); do $PODMAN rm -f -t 0 p$i >/dev/null; done; t1=$(now)
pr=$(((t1 - t0) / 1000000))
row "rm -f 50 containers (total)" "$lr" "$pr"
row "create+start and rm -f of 50 (total)" "$((lc + lr))" "$((pc + pr))"
devcontainer_row
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
