#!/usr/bin/env bash
# Run the runtime-tools validation suite for runc and for another runtime, and
# list, per test file, the assertions that pass under runc but fail under the
# other one.
#
#   conformance/compare.sh [options] [TEST...]
#
#   -r, --runtime PATH        runtime to judge (default: $LXR_RUNTIME, else
#                             <repo>/bin/lxr-runtime.js)
#   -b, --baseline PATH       runc's results to compare against: a results dir
#                             or JSON summary from run.sh; default: run runc now
#       --reference PATH      the reference runtime (default: runc in PATH)
#   -k, --known-failures FILE failures to tolerate in --ci mode
#                             (default: conformance/known-failures.txt)
#       --ci                  exit 1 if the runtime fails an assertion the
#                             reference passes and FILE does not list it
#   -j, --json FILE           write the comparison as JSON
#   TEST                      test names to run (default: all)
#
# Exit status: 0 done (or no unexpected failure with --ci), 1 unexpected
# failures with --ci, 2 usage or set-up error (e.g. the runtime does not run).
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${CONFORMANCE_WORK:-$here/work}
export CONFORMANCE_WORK=$work
node_bin=${NODE:-node}

die() { echo "conformance/compare.sh: $*" >&2; exit 2; }

runtime=${LXR_RUNTIME:-$repo/bin/lxr-runtime.js}
reference=runc
baseline=""
known=$here/known-failures.txt
ci=0
json=""
tests=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -r|--runtime) runtime=${2:?}; shift 2 ;;
    -b|--baseline) baseline=${2:?}; shift 2 ;;
    --reference) reference=${2:?}; shift 2 ;;
    -k|--known-failures) known=${2:?}; shift 2 ;;
    --ci) ci=1; shift ;;
    -j|--json) json=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) tests+=("$1"); shift ;;
  esac
done

[[ -e $runtime ]] || command -v "$runtime" >/dev/null || die "runtime not found: $runtime (build it with npm run build, or pass --runtime)"
[[ -f $known ]] || die "known failures file not found: $known"

# A runtime that cannot even print its version is reported as such, rather than
# as hundreds of failed assertions.
case $runtime in
  *.js|*.mjs|*.cjs) probe=("$node_bin" "$runtime") ;;
  *) probe=("$runtime") ;;
esac
if ! probe_out=$(timeout 30 "${probe[@]}" --version 2>&1); then
  die "runtime does not run: ${probe[*]} --version failed: $(printf '%s' "$probe_out" | tail -1)"
fi

label=$(basename "$runtime"); label=${label%.*js}
reflabel=$(basename "$reference")
[[ $label != "$reflabel" ]] || label=$label-other

if [[ -z $baseline ]]; then
  "$here/run.sh" --quiet --runtime "$reference" --label "$reflabel" --json "$work/$reflabel.json" "${tests[@]}"
  baseline=$work/$reflabel.json
fi
"$here/run.sh" --quiet --runtime "$runtime" --label "$label" --json "$work/$label.json" "${tests[@]}"

args=(compare "$baseline" "$work/$label.json" --known-failures "$known")
[[ $ci == 1 ]] && args+=(--ci)
[[ -n $json ]] && args+=(--json "$json")
exec "$node_bin" "$here/lib/tap-summary.mjs" "${args[@]}"
