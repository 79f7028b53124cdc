// linux.sysctl (config-linux.md "Sysctl"): a sysctl is written through /proc/sys by the
// container's init, after it has entered its namespaces. Only sysctls that belong to a
// namespace the container has for itself may be set; anything else would change the
// host (runc's rule, libcontainer/configs/validate). A namespace counts as the
// container's own when it is created for it, or joined by a path that is not one of the
// runtime's own namespaces (compared by inode, through the fd the init will join).
import { fstatSync, statSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import { NS_PROC_NAME, type NamespacePlan } from './namespaces.js';
import type { NamespaceType } from '../../oci-spec/types.js';

const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);
const UTS_SYSCTLS = new Set(['kernel.hostname', 'kernel.domainname']);

const NS_WORDS: Partial<Record<NamespaceType, string>> = { ipc: 'ipc', network: 'network', uts: 'uts' };

/** The namespace a sysctl belongs to, or undefined for one that is not namespaced. */
export function sysctlNamespace(key: string): NamespaceType | undefined {
  // "net/ipv4/ip_forward" is the same sysctl as "net.ipv4.ip_forward"
  const k = key.replace(/\//g, '.');
  if (IPC_SYSCTLS.has(k) || k.startsWith('kernel.msg') || k.startsWith('kernel.shm') || k.startsWith('fs.mqueue.')) return 'ipc';
  if (k.startsWith('net.')) return 'network';
  if (UTS_SYSCTLS.has(k)) return 'uts';
  return undefined;
}

/** Is the namespace of this type the container's own (created, or joined and not ours)? */
function ownNamespace(type: NamespaceType, ns: NamespacePlan): { own: boolean; joined?: string } {
  if (ns.create.has(type)) return { own: true };
  const j = ns.join.find((x) => x.type === type);
  if (!j) return { own: false };
  try {
    const theirs = fstatSync(j.fd);
    const ours = statSync(`/proc/self/ns/${NS_PROC_NAME[type]}`);
    return { own: !(theirs.dev === ours.dev && theirs.ino === ours.ino), joined: j.path };
  } catch {
    // cannot tell: treat it as the host's
    return { own: false, joined: j.path };
  }
}

/**
 * Refuse, naming the key, every sysctl that would be written to a namespace the
 * container shares with the host. Called before anything is created.
 */
export function checkSysctls(sysctl: Record<string, string> | undefined, ns: NamespacePlan): void {
  for (const key of Object.keys(sysctl ?? {})) {
    if (key.includes('..') || key.startsWith('/') || key.startsWith('.') || !key) throw new LxrError(`linux.sysctl: invalid key "${key}"`);
    const type = sysctlNamespace(key);
    if (!type) throw new LxrError(`linux.sysctl: sysctl "${key}" is not in a separate kernel namespace, so it cannot be set for a container`);
    const { own, joined } = ownNamespace(type, ns);
    if (own) continue;
    const word = NS_WORDS[type]!;
    if (joined) throw new LxrError(`linux.sysctl: sysctl "${key}" is not allowed in the hosts ${word} namespace (linux.namespaces joins "${joined}", which is the runtime's own)`);
    throw new LxrError(`linux.sysctl: sysctl "${key}" is not allowed in the hosts ${word} namespace (add a "${type}" namespace to linux.namespaces)`);
  }
}
