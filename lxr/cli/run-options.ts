// The yargs options of docker run's everyday flags (lxr/containers/run-flags.ts parses what
// they give), and the groups of `lxr run --help`.
import type { Argv } from 'yargs';

type Kind = 'many' | 'one' | 'bool';

/**
 * One flag a line: NAME[/ALIAS], then many (repeatable), one (takes a value) or bool, then
 * the help text.
 */
const RUN_FLAGS = `
dns                   many  DNS server for the container's resolv.conf
dns-search            many  DNS search domain
dns-option            many  resolv.conf option, e.g. ndots:2
add-host              many  NAME:IP line for /etc/hosts
shm-size              one   size of /dev/shm, e.g. 256m (default 64m)
ulimit                many  NAME=SOFT[:HARD], e.g. nofile=1024:2048
memory-swap           one   memory plus swap limit (-1: unlimited swap)
memory-reservation    one   memory soft limit
cpu-shares/c          one   CPU shares (relative weight)
cpuset-cpus           one   CPUs to run on, e.g. 0-1 or 0,2
cpuset-mems           one   memory nodes to use, e.g. 0
oom-score-adj         one   OOM killer preference, -1000 to 1000
device                many  HOSTDEVICE[:CONTAINERPATH][:rwm]
tmpfs                 many  PATH[:OPTIONS] tmpfs mount
pid                   one   PID namespace: host | container:NAME
ipc                   one   IPC namespace: private | shareable | none | host | container:NAME
uts                   one   UTS namespace: host
sysctl                many  KEY=VALUE of a namespaced sysctl (net.*, kernel.shm*, kernel.msg*, fs.mqueue.*)
expose                many  PORT[/PROTO] or a range START-END[/PROTO] the container listens on
publish-all/P         bool  publish every exposed port (the image's EXPOSE included) on a free host port
log-driver            one   json-file (the default: lxr logs reads it) | none
log-opt               many  max-size=SIZE, max-file=N: rotate the log as docker's json-file driver
health-cmd            one   command to run to check health (run by /bin/sh -c)
health-interval       one   time between checks, e.g. 30s (default 30s)
health-timeout        one   time a check may take, e.g. 30s (default 30s)
health-retries        one   consecutive failures that make the container unhealthy (default 3)
health-start-period   one   time failures do not count while the container starts (default 0s)
no-healthcheck        bool  no health check, not even the image's HEALTHCHECK
init                  bool  run a small init as PID 1 that reaps zombies and forwards signals
group-add             many  additional group (name in the image or number)
stop-signal           one   signal to stop the container (default the image's, or SIGTERM)
stop-timeout          one   seconds to wait after the stop signal before SIGKILL (default 10)
cidfile               one   write the container id to this file (it must not exist)
platform              one   OS/ARCH[/VARIANT] of the image to pull
`;

function flagTable(text: string): [string, Kind, string, string?][] {
  return text.trim().split('\n').map((line) => {
    const m = /^(\S+?)(?:\/(\S))?\s+(many|one|bool)\s+(.*)$/.exec(line)!;
    return [m[1]!, m[3] as Kind, m[4]!, ...(m[2] ? [m[2]] : [])] as [string, Kind, string, string?];
  });
}

export function runFlagOptions<T>(y: Argv<T>): Argv<T> {
  for (const [name, kind, describe, alias] of flagTable(RUN_FLAGS)) {
    y = y.option(name, { ...(alias ? { alias } : {}), type: kind === 'bool' ? 'boolean' : 'string', ...(kind === 'many' ? { array: true } : {}), describe });
  }
  return y;
}

/** `lxr run --help`: the flags in groups, by what they are about. */
export const HELP_GROUPS: [string, string[]][] = [
  ['Command and environment:', ['name', 'entrypoint', 'env', 'env-file', 'workdir', 'user', 'group-add', 'tty', 'interactive', 'detach', 'rm', 'init', 'cidfile', 'pull', 'platform']],
  ['Network and names:', ['network', 'hostname', 'publish', 'publish-all', 'expose', 'dns', 'dns-search', 'dns-option', 'add-host']],
  ['Storage and devices:', ['volume', 'tmpfs', 'read-only', 'device', 'shm-size']],
  ['Resources:', ['memory', 'memory-swap', 'memory-reservation', 'cpus', 'cpu-shares', 'cpuset-cpus', 'cpuset-mems', 'pids-limit', 'ulimit', 'oom-score-adj']],
  ['Namespaces:', ['pid', 'ipc', 'uts', 'sysctl']],
  ['Security:', ['privileged', 'cap-add', 'cap-drop', 'security-opt']],
  ['Lifecycle and health:', ['restart', 'stop-signal', 'stop-timeout', 'health-cmd', 'health-interval', 'health-timeout', 'health-retries', 'health-start-period', 'no-healthcheck']],
  ['Logging:', ['log-driver', 'log-opt']],
  ['IDE:', ['ide', 'ide-port', 'ide-bind']],
];

/** Put run/create's flags in HELP_GROUPS (flags a command lacks are left out). */
export function groupRunHelp<T>(y: Argv<T>): Argv<T> {
  const have = new Set(Object.keys((y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key));
  for (const [title, keys] of HELP_GROUPS) {
    const k = keys.filter((x) => have.has(x));
    if (k.length) y = y.group(k, title);
  }
  return y;
}
