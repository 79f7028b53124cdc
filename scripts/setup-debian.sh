#!/usr/bin/env bash
# Install the Debian packages lxr needs. Run as root on Debian 12 (bookworm).
#   scripts/setup-debian.sh          what lxr needs to build and run
#   scripts/setup-debian.sh --test   also what the test suite, conformance and benchmarks use
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

run=(
  gcc libc6-dev linux-libc-dev   # native/ (the C part, built by npm install)
  zstd                           # zstd-compressed image layers
  libseccomp2                    # linux.seccomp (loaded through koffi)
  iproute2 iptables              # container networking
  uidmap                         # newuidmap/newgidmap for rootless containers with /etc/subuid ranges
  passt slirp4netns              # rootless networks: pasta (podman 5's default), else slirp4netns (podman 4's)
  fuse-overlayfs                 # rootless rootfs where the kernel refuses overlayfs in a user namespace (< 5.11)
  ca-certificates
)
test=(
  busybox-static                 # tiny rootfs for runtime tests
  runc crun                      # reference runtimes: conformance baseline, benchmarks
  golang-go make                 # builds the OCI runtime-tools suite
  docker-registry skopeo umoci   # loopback registry; peers the image tool is compared with
  openssl                        # self-signed certificates for the registry token tests
  passwd util-linux procps        # useradd, mount, setsid (tty tests), ps
  qemu-system-x86 linux-image-amd64 cpio xz-utils kmod  # the cgroup v2 VM harness (the guest loads null_blk)
  time                           # /usr/bin/time -v for benchmarks
  containernetworking-plugins iputils-ping  # Debian's CNI plugins (tested in lxr's place), ping
  uidmap                         # newuidmap/newgidmap for the rootless tests
  chromium libkrb5-dev build-essential python3  # the --ide test: a browser, and code-server's native modules
  containerd podman conmon netavark  # test/engines: lxr-runtime as the runc of containerd (ctr, shim) and podman
  debootstrap bzip2                # lxr/test/debian.test.ts builds a bookworm image (cached in $LXR_TEST_CACHE); a bzip2 layer test
)

pkgs=("${run[@]}")
[ "${1:-}" = "--test" ] && pkgs+=("${test[@]}")

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-debian.sh: run as root (it uses apt-get)" >&2
  exit 1
fi
apt-get update -q
apt-get install -y -q "${pkgs[@]}"
