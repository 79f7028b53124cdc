#!/usr/bin/env bash
# Rootless: `run --rm --network none IMAGE true` as an ordinary user, lxr against rootless
# podman (--runtime /usr/sbin/runc: crun 1.8 refuses hybrid cgroups), with rootful lxr beside
# them, same busybox image, in one run. The user is made here (useradd, its own /etc/subuid
# range) and removed at the end. Not part of npm test. Needs root, podman, uidmap and a built
# lxr (npm run build). Usage: bench/frontend/rootless.sh [N]   (default 20)
set -euo pipefail
unset NODE_EXTRA_CA_CERTS   # adds ~35 ms to every Node start on these machines
cd "$(dirname "$0")/../.."
N=${1:-20}
U=lxrbench$(($$ % 100000))
WORK=$(mktemp -d /tmp/lxr-bench-rl.XXXXXX)
chmod 755 "$WORK"
IMAGE=localhost/bench/busybox:1
HOMEDIR=$WORK/home

as_user() {
  env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$HOMEDIR" USER="$U" XDG_RUNTIME_DIR="$WORK/run" \
    setpriv --reuid "$U" --regid "$U" --init-groups "$@"
}
cleanup() {
  as_user podman system reset -f >/dev/null 2>&1 || true
  # the processes the user still has are this benchmark's (podman's pause process among them)
  for p in $(ps -o pid= -u "$U" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  userdel --remove "$U" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v podman >/dev/null || { echo "podman is missing: apt-get install -y podman" >&2; exit 1; }
useradd --create-home --home-dir "$HOMEDIR" --shell /bin/sh --user-group "$U"
sub=$(grep "^$U:" /etc/subuid || true)
[ -n "$sub" ] || usermod --add-subuids 1900000000-1900065535 --add-subgids 1900000000-1900065535 "$U"
install -d -m 700 -o "$U" -g "$U" "$WORK/run"

# the image: in the user's lxr store, in rootful lxr's, and loaded into the user's podman
npx tsx bench/frontend/make-image.ts "$HOMEDIR/.local/share/lxr/images" "$IMAGE"
chown -R "$U:$U" "$HOMEDIR/.local"
npx tsx bench/frontend/make-image.ts "$WORK/root/images" "$IMAGE"
npx tsx bench/frontend/make-image.ts "$WORK/layout" "$IMAGE"
tar -C "$WORK/layout" -cf "$WORK/image.tar" .
chmod 644 "$WORK/image.tar"
as_user podman --runtime /usr/sbin/runc load -q -i "$WORK/image.tar" >/dev/null
PIMAGE=$(as_user podman images -q | head -1)

. bench/frontend/timeit.sh

LXR="$(command -v node) $PWD/bin/lxr.js"
l=$(timeit as_user $LXR run --rm --network none $IMAGE true)
p=$(timeit as_user podman --runtime /usr/sbin/runc run --rm --network none "$PIMAGE" true)
r=$(timeit env LXR_ROOT="$WORK/root" LXR_RUN_ROOT="$WORK/rootrun" $LXR run --rm --network none $IMAGE true)
printf '%-52s %12s %14s %12s\n' "operation (mean of $N)" "lxr user ms" "podman user ms" "lxr root ms"
printf '%-52s %12s %14s %12s\n' "run --rm --network none IMAGE true" "$l" "$p" "$r"
