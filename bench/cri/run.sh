#!/bin/sh
# CRI pod cycle benchmark: lxr-runtime against runc as runtime handlers of one containerd.
# Options: see bench/cri/cri.ts. Needs root and what test/engines/cri.test.ts needs. Not
# part of npm test. NODE_EXTRA_CA_CERTS is unset: it adds ~35 ms to every Node start here
# (and containerd's shim starts lxr-runtime several times per pod).
unset NODE_EXTRA_CA_CERTS
cd "$(dirname "$0")/../.." || exit 1
exec npx tsx bench/cri/cri.ts "$@"
