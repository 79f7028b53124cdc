# Sourced by run.sh and rootless.sh: timeit CMD... prints the mean milliseconds of $N runs of
# CMD, after one warm-up run (which also does any first-use setup) that must succeed.
now() { date +%s%N; }
timeit() {
  local t0 t1 i
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@" >&2 || true; return 1; }
  t0=$(now)
  for ((i = 0; i < N; i++)); do "$@" >/dev/null; done
  t1=$(now)
  echo $(((t1 - t0) / N / 1000000))
}
