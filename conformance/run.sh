#!/usr/bin/env bash
# Run the OCI runtime-tools validation suite (validation/*/*.t) against one
# OCI runtime and summarise the TAP it produces.
#
#   conformance/run.sh [options] [TEST...]
#
#   -r, --runtime PATH   runtime under test (default: $RUNTIME, else runc).
#                        A .js/.mjs/.cjs file is run with node through a wrapper.
#   -l, --label NAME     name for the results (default: runtime's file name)
#   -o, --out DIR        raw TAP/stderr/exit files (default: work/results/LABEL)
#   -j, --json FILE      also write a machine-readable summary (JSON) to FILE
#       --no-rerun       do not rerun a failing test file once
#       --build-only     build the suite and stop
#       --quiet          only print the summary table
#   TEST                 test names (default, kill, ...) or .t paths; default all
#
# Environment: RUNTIME_TOOLS_TARBALL (suite source), CONFORMANCE_WORK (work dir,
# default conformance/work), CONFORMANCE_TIMEOUT (seconds per test file,
# default 300), CONFORMANCE_ISOLATE_ROOT (1: give the runtime its own --root
# state directory, default 1), NODE (node binary for .js runtimes).
#
# Exit status: 0 when the suite ran (whatever the assertions say; use
# compare.sh --ci to gate), 2 on a usage or set-up error.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

die() { echo "conformance/run.sh: $*" >&2; exit 2; }
log() { [[ $quiet == 1 ]] || echo "$@" >&2; }

runtime=${RUNTIME:-runc}
label=""
out=""
json=""
rerun=1
build_only=0
quiet=0
tests=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -r|--runtime) runtime=${2:?}; shift 2 ;;
    -l|--label) label=${2:?}; shift 2 ;;
    -o|--out) out=${2:?}; shift 2 ;;
    -j|--json) json=${2:?}; shift 2 ;;
    --no-rerun) rerun=0; shift ;;
    --build-only) build_only=1; shift ;;
    --quiet) quiet=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) tests+=("$1"); shift ;;
  esac
done

[[ $(id -u) == 0 ]] || die "must run as root (the suite creates namespaces, cgroups and mounts)"

work=${CONFORMANCE_WORK:-$here/work}
tarball=${RUNTIME_TOOLS_TARBALL:-$here/../../shared/conformance/runtime-tools-408c51e.tar.gz}
timeout_s=${CONFORMANCE_TIMEOUT:-300}
isolate_root=${CONFORMANCE_ISOLATE_ROOT:-1}
node_bin=${NODE:-node}

[[ -f $tarball ]] || die "runtime-tools tarball not found: $tarball (set RUNTIME_TOOLS_TARBALL)"
command -v go >/dev/null || die "go not found in PATH (Debian package golang-go)"
command -v make >/dev/null || die "make not found in PATH (Debian package make)"
command -v "$node_bin" >/dev/null || die "node not found: $node_bin (set NODE)"

mkdir -p "$work"
chmod 0755 "$work"

# --- build (cached per tarball digest) -------------------------------------
digest=$(sha256sum "$tarball" | cut -c1-12)
suite=$work/runtime-tools-$digest
if [[ ! -f $suite/.lxr-built ]]; then
  log "building runtime-tools from $tarball into $suite"
  rm -rf "$suite" "$suite.tmp"
  mkdir -p "$suite.tmp"
  tar -xzf "$tarball" -C "$suite.tmp" --strip-components=1 \
    || die "cannot extract $tarball"
  [[ -f $suite.tmp/Makefile && -d $suite.tmp/vendor ]] \
    || die "$tarball does not look like runtime-tools with a vendor dir"
  # Offline, reproducible build: vendored modules only, no proxy, no sum DB,
  # no cgo (so no C compiler is needed).
  if ! (cd "$suite.tmp" &&
        env GOFLAGS=-mod=vendor GOPROXY=off GOSUMDB=off \
            GOTOOLCHAIN=local CGO_ENABLED=0 \
            GOCACHE="$work/gocache" GOPATH="$work/gopath" GOMODCACHE="$work/gopath/pkg/mod" \
            make -j"$(nproc)" runtimetest validation-executables) >"$work/build.log" 2>&1; then
    tail -20 "$work/build.log" >&2
    die "building runtime-tools failed (full log: $work/build.log)"
  fi
  if [[ -d $work/gopath/pkg/mod/cache/download ]] && \
     [[ -n $(ls -A "$work/gopath/pkg/mod/cache/download" 2>/dev/null) ]]; then
    die "the build downloaded Go modules (it must use vendor/ only): see $work/gopath/pkg/mod"
  fi
  touch "$suite.tmp/.lxr-built"
  mv "$suite.tmp" "$suite"
  log "built $(ls "$suite"/validation/*/*.t | wc -l) test files"
fi
[[ $build_only == 1 ]] && { echo "$suite"; exit 0; }

# --- the runtime under test, behind a wrapper ------------------------------
# The suite runs $RUNTIME via exec.LookPath, so it needs one executable path.
# The wrapper also gives the runtime its own state directory (--root), so the
# harness can clean up after a file without touching anyone else's containers.
if [[ $runtime == */* ]]; then
  [[ -e $runtime ]] || die "runtime not found: $runtime"
  runtime_path=$(cd "$(dirname "$runtime")" && pwd)/$(basename "$runtime")
else
  runtime_path=$(command -v "$runtime") || die "runtime not found in PATH: $runtime"
fi
if [[ -z $label ]]; then
  label=$(basename "$runtime_path"); label=${label%.*js}
fi
[[ $label =~ ^[A-Za-z0-9._-]+$ ]] || die "label must be [A-Za-z0-9._-]+: $label"
out=${out:-$work/results/$label}
state_root=$work/state/$label
wrapper=$work/bin/$label
mkdir -p "$work/bin" "$state_root"
chmod 0755 "$work/bin" "$work/state"
case $runtime_path in
  *.js|*.mjs|*.cjs) launcher="$(printf '%q' "$(command -v "$node_bin")") $(printf '%q' "$runtime_path")" ;;
  *) [[ -x $runtime_path ]] || die "runtime is not executable: $runtime_path"
     launcher=$(printf '%q' "$runtime_path") ;;
esac
root_arg=""
[[ $isolate_root == 1 ]] && root_arg="--root $(printf '%q' "$state_root")"
{
  echo '#!/bin/sh'
  echo '# generated by conformance/run.sh: the runtime under test, with its own state dir'
  echo 'unset NODE_EXTRA_CA_CERTS'
  echo "exec $launcher $root_arg \"\$@\""
} >"$wrapper.tmp"
chmod 0755 "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"

# Bundles go in TMPDIR (os.MkdirTemp). Every directory on the way to a bundle
# must be searchable by others, or a container whose root is a mapped uid
# (linux_uid_mappings, linux_ns_nopath) gets "permission denied".
tmp_base=$work/tmp
mkdir -p "$tmp_base"; chmod 0755 "$tmp_base"
searchable() {
  local d=$1
  while [[ $d != / ]]; do
    [[ $(( 0$(stat -c %a "$d") & 01 )) != 0 ]] || return 1
    d=$(dirname "$d")
  done
}
if ! searchable "$tmp_base"; then
  tmp_base=$(mktemp -d /tmp/lxr-conformance.XXXXXX); chmod 0755 "$tmp_base"
  log "note: $work is not searchable by others; bundles go in $tmp_base"
  trap 'rm -rf --one-file-system "$tmp_base"' EXIT
fi
run_tmp=$tmp_base/$label
mkdir -p "$run_tmp"; chmod 0755 "$run_tmp"

# --- clean-up between files ------------------------------------------------
unmount_under() { # deepest first; lazy if busy
  local m
  findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | while read -r m; do
    m=$(printf '%b' "$m")
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
cleanup_after_file() {
  local id
  if [[ $isolate_root == 1 ]]; then
    for id in $( { "$wrapper" list -q 2>/dev/null || true; ls -A "$state_root" 2>/dev/null; } | sort -u); do
      [[ $id =~ ^[A-Za-z0-9._-]+$ ]] || continue
      timeout 30 "$wrapper" delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  unmount_under "$run_tmp"
  if findmnt -rn -o TARGET | grep -q "^$run_tmp/"; then
    echo "conformance/run.sh: warning: mounts remain under $run_tmp" >&2
  else
    find "$run_tmp" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null || true
  fi
  # The suite's cgroups (AbsCgroupPath /cgrouptest, RelCgroupPath
  # testdir/cgrouptest/container, relative to the runtime's own cgroup):
  # rmdir only ever removes empty ones.
  local h p d
  for h in /sys/fs/cgroup/*/; do
    for p in / $(cut -d: -f3 /proc/self/cgroup | sort -u); do
      for d in testdir/cgrouptest/container testdir/cgrouptest testdir cgrouptest; do
        [[ -d $h$p/$d ]] && rmdir "$h$p/$d" 2>/dev/null || true
      done
    done
  done
}

# --- run -------------------------------------------------------------------
# The suite uses fixed cgroup paths (/cgrouptest...), so two runs on one machine
# would disturb each other: take a machine-wide lock.
exec 9>/run/lxr-conformance.lock
if ! flock -n 9; then
  log "waiting for another conformance run to finish (lock /run/lxr-conformance.lock)"
  flock 9
fi
mkdir -p "$out"
rm -f "$out"/*.tap "$out"/*.err "$out"/*.exit "$out"/*.attempts
if [[ ${#tests[@]} == 0 ]]; then
  mapfile -t files < <(cd "$suite" && ls validation/*/*.t)
else
  files=()
  for t in "${tests[@]}"; do
    t=$(basename "$t" .t)
    [[ -x $suite/validation/$t/$t.t ]] || die "no such test file: validation/$t/$t.t"
    files+=("validation/$t/$t.t")
  done
fi

log "runtime: $runtime_path (label $label, wrapper $wrapper)"
log "results: $out"
for f in "${files[@]}"; do
  name=$(basename "$f" .t)
  attempts=0
  while :; do
    attempts=$((attempts + 1))
    rc=0
    # cwd must be the suite dir: tests read ./runtimetest and ./rootfs-*.tar.gz.
    (cd "$suite" && env RUNTIME="$wrapper" TMPDIR="$run_tmp" \
        timeout -k 10 "$timeout_s" "./$f" >"$out/$name.tap" 2>"$out/$name.err" </dev/null) || rc=$?
    cleanup_after_file
    failed=0
    [[ $rc != 0 ]] && failed=1
    grep -q '^not ok' "$out/$name.tap" && failed=1
    if [[ $failed == 1 && $rerun == 1 && $attempts == 1 ]]; then
      log "  $name: failed (exit $rc), running it once more"
      continue
    fi
    break
  done
  echo "$rc" >"$out/$name.exit"
  echo "$attempts" >"$out/$name.attempts"
  log "  $name: exit $rc, $(grep -c '^ok' "$out/$name.tap" || true) ok, $(grep -c '^not ok' "$out/$name.tap" || true) not ok"
done
rmdir "$run_tmp" 2>/dev/null || true

args=(summary "$out" --runtime "$runtime_path" --label "$label")
[[ -n $json ]] && args+=(--json "$json")
[[ ${#tests[@]} == 0 ]] || args+=(--partial)
"$node_bin" "$here/lib/tap-summary.mjs" "${args[@]}"
