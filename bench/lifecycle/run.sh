#!/bin/sh
# Lifecycle benchmark: lxr-runtime vs runc (and crun) on a busybox bundle.
# Options and environment: see bench/lifecycle/lifecycle.mjs. Not part of npm test.
# NODE_EXTRA_CA_CERTS is unset: it adds ~35 ms to every Node start-up here.
unset NODE_EXTRA_CA_CERTS
exec "${NODE:-node}" "$(dirname "$0")/lifecycle.mjs" "$@"
