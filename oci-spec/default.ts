// The default runtime config, the same one `runc spec` writes (and `lxr-runtime spec` too):
// the usual namespaces and mounts, runc's default capabilities, masked and read-only paths.
// With rootless, runc's `spec --rootless` changes: a user namespace mapping the caller to root,
// no network namespace, /sys bind-mounted from the host, no cgroup mount, no resources.
import type { Mount, Spec } from './types.js';
import { subIdRanges, userName } from '../common/subid.js';

/** The PATH of runc's default config, and where the runtime looks for args[0] when env has no PATH. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** runc's default capability set for a container process. */
export const DEFAULT_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
  '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * The default config. `rootless` (runc's `spec --rootless`) maps the caller's uid and gid
 * to root, plus (unless `subIds` is false) the caller's first /etc/subuid and /etc/subgid
 * ranges to ids 1 and up.
 */
export function defaultSpec(opts: { rootless?: boolean; args?: string[]; subIds?: boolean } = {}): Spec {
  const rootless = opts.rootless ?? false;
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      // gid=5 (tty) is not mapped in a rootless user namespace
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...(rootless ? [] : ['gid=5'])],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    rootless
      ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
  if (!rootless) {
    mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
  }
  const spec: Spec = {
    ociVersion: '1.3.0',
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: opts.args ?? ['sh'],
      env: [`PATH=${DEFAULT_PATH}`, 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'lxr',
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  const linux = spec.linux!;
  if (rootless) {
    linux.namespaces!.push({ type: 'user' });
    const uid = process.geteuid?.() ?? 0;
    const gid = process.getegid?.() ?? 0;
    linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
    linux.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
    // With subordinate ids in /etc/subuid and /etc/subgid, ids 1.. map onto the first
    // range (written by newuidmap/newgidmap at create), so that users other than root work.
    if (opts.subIds ?? true) {
      const name = userName(uid);
      const sub = { uid: subIdRanges('uid', { name, id: uid })[0], gid: subIdRanges('gid', { name, id: uid })[0] };
      if (sub.uid && sub.gid) {
        linux.uidMappings.push({ containerID: 1, hostID: sub.uid.start, size: sub.uid.size });
        linux.gidMappings.push({ containerID: 1, hostID: sub.gid.start, size: sub.gid.size });
        // with a real gid range, devpts can give ptys the tty group again
        const pts = mounts.find((m) => m.destination === '/dev/pts');
        if (pts?.options && sub.gid.size > 5) pts.options.push('gid=5');
      }
    }
  } else {
    linux.namespaces!.splice(1, 0, { type: 'network' });
    linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
  }
  return spec;
}
