// The container's network, by mode:
//   none    a network namespace of its own with only loopback (up)
//   host    no network namespace: the host's interfaces, the host's /etc/hosts and resolv.conf
//   bridge  the default network of lxr/network ("lxr": bridge lxr0, a subnet no route overlaps), made on first use
//   NAME    a network made with lxr/network (a CNI configuration list of that name)
// Namespaces are named lxr-<id> under /run/netns, so a host restart removes them with the
// rest of the run state. Everything here is undone by teardownNetwork, which may run twice.
// netns.js alone is light; the CNI side (network/manager/index.js) is loaded only for bridge networks
import { existsSync, readdirSync } from 'node:fs';
import { createNetns, removeNetns, NETNS_DIR } from '../network/netns.js';
import type { NetworkOptions } from '../network/manager/index.js';

const DEFAULT_NETWORK = 'lxr';
const cni = () => import('../network/manager/index.js');
import { LxrError, errorMessage } from '../../common/errors.js';
import type { Mount } from '../../oci-spec/types.js';
import type { LxrContext } from '../core/context.js';
import { failPoint } from '../core/context.js';
import { listBroken, listRecords } from './store.js';
import { liveState } from './status.js';
import type { ContainerRecord } from '../core/types.js';

export interface NetworkSetup {
  netnsPath?: string;
  /** rootless: the user namespace that owns netnsPath, which the container joins too */
  usernsPath?: string;
  ip?: string;
  mounts: Mount[];
}

/**
 * lxr/network's directories: global, not under --root (one bridge, one address space for
 * every root): /run/lxr-net, or LXR_NET_STATE_DIR.
 */
export function networkOptions(ctx: LxrContext): NetworkOptions {
  const { confDir, stateDir, cniPath } = ctx.net;
  return { ...(confDir ? { confDir } : {}), ...(stateDir ? { stateDir } : {}), ...(cniPath ? { cniPath } : {}) };
}

const isBridge = (network: string) => network !== 'none' && network !== 'host';
const networkName = (network: string) => (network === 'bridge' ? DEFAULT_NETWORK : network);
/** The container's network namespace under /run/netns (tests set their own prefix, to find theirs). */
export const netnsName = (ctx: LxrContext, id: string) => `${ctx.netnsPrefix}-${id}`;

/** Checked before anything is made. */
export async function checkNetworkMode(ctx: LxrContext, network: string, ports: unknown[]): Promise<void> {
  if (ctx.rootless) return (await import('../rootless/network.js')).checkRootlessNetwork(network, ports as never);
  if (!isBridge(network)) {
    if (ports.length && network === 'none') throw new LxrError('-p: publishing ports needs a bridge network (--network none has no interfaces)');
    return;
  }
  if (network === 'bridge') return; // made on first use
  const { listNetworks } = await cni();
  if (!listNetworks(networkOptions(ctx)).some((n) => n.name === network)) {
    throw new LxrError(`--network ${network}: no such network (see lxr/network; "bridge" is the default one)`);
  }
}

/** Called before the container is created (each start). On failure it has undone itself. */
export async function setupNetwork(ctx: LxrContext, rec: ContainerRecord): Promise<NetworkSetup> {
  const mode = rec.settings.network;
  if (mode === 'host') return { mounts: [] };
  // rootless: a network namespace of the container's own user namespace (made by the runtime)
  if (ctx.rootless) return (await import('../rootless/network.js')).setupRootlessNetwork(ctx, rec);
  const name = netnsName(ctx, rec.id);
  removeNetns(name); // left over from a run whose clean-up never came (kill -9)
  const netnsPath = createNetns(name);
  if (!isBridge(mode)) return { netnsPath, mounts: [] };
  const o = networkOptions(ctx);
  const network = networkName(mode);
  const { attachContainer, detachContainer, dnsFiles, ensureDefaultNetwork } = await cni();
  try {
    if (mode === 'bridge') {
      await ensureDefaultNetwork({
        ...o,
        // tests: a bridge and subnet of their own, away from a real lxr0
        ...(ctx.net.bridge ? { bridge: ctx.net.bridge } : {}),
        ...(ctx.net.subnet ? { subnet: ctx.net.subnet } : {}),
      });
    }
    const att = await attachContainer({ ...o, containerId: rec.id, name: rec.name, netnsPath, network, ports: rec.settings.ports });
    failPoint('dns');
    const f = rec.settings.flags;
    const files = await dnsFiles({
      ...o, containerId: rec.id, name: rec.name, hostname: rec.settings.hostname ?? rec.id.slice(0, 12),
      // --dns, --dns-search, --dns-option, --add-host
      dns: { ...(f?.dns ? { servers: f.dns } : {}), ...(f?.dnsSearch ? { search: f.dnsSearch } : {}), ...(f?.dnsOption ? { options: f.dnsOption } : {}) },
      ...(f?.addHost ? { extraHosts: f.addHost.map((h) => ({ ip: h.ip, names: [h.name] })) } : {}),
    });
    const bind = (source: string, destination: string): Mount => ({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
    return {
      netnsPath,
      ip: att.ip,
      mounts: [bind(files.hostsPath, '/etc/hosts'), bind(files.resolvConfPath, '/etc/resolv.conf'), bind(files.hostnamePath, '/etc/hostname')],
    };
  } catch (e) {
    await detachContainer({ ...o, containerId: rec.id, netnsPath, network }).catch(() => {});
    removeNetns(name);
    throw e;
  }
}

/** Called when the container stopped or is removed; safe to call twice. */
export async function teardownNetwork(ctx: LxrContext, rec: ContainerRecord): Promise<void> {
  const mode = rec.settings.network;
  if (mode === 'host') return;
  if (ctx.rootless) return (await import('../rootless/network.js')).stopUserNetwork(ctx, rec.id);
  const name = netnsName(ctx, rec.id);
  if (isBridge(mode)) {
    try {
      const { detachContainer } = await cni();
      await detachContainer({ ...networkOptions(ctx), containerId: rec.id, netnsPath: `/run/netns/${name}`, network: networkName(mode) });
    } catch (e) {
      process.stderr.write(`lxr: detaching ${rec.name} from network ${networkName(mode)}: ${errorMessage(e)}\n`);
    }
  }
  removeNetns(name);
}

/**
 * `lxr gc`: the network state of containers that no longer exist or no longer run (a kill -9
 * of lxr between create and clean-up): CNI DEL and GC of their attachments (leases, veths,
 * rules, DNS files) and their network namespaces. Created and running containers keep theirs.
 */
export async function gcContainerNetworks(ctx: LxrContext): Promise<{ removed: string[]; errors: string[] }> {
  if (ctx.rootless) return { removed: [], errors: [] }; // no CNI state: slirp4netns/pasta end with their container
  const records = listRecords(ctx);
  const keep = new Set(records.filter((r) => ['created', 'running'].includes(liveState(ctx, r).status)).map((r) => r.id));
  // a broken record's container may still run: rm -f is what removes it
  for (const b of listBroken(ctx)) keep.add(b.id);
  // the network state is shared by every --root: what this root does not know may be another
  // root's container; it is kept while its namespace exists
  const mine = new Set([...records.map((r) => r.id), ...keep]);
  const removed = new Set<string>();
  const errors: string[] = [];
  const { gcNetwork, listAttachments } = await cni();
  for (const a of listAttachments(networkOptions(ctx))) if (!mine.has(a.containerId) && existsSync(a.netns)) keep.add(a.containerId);
  const r = await gcNetwork({ ...networkOptions(ctx), keep: [...keep] });
  for (const id of r.removed) removed.add(id);
  errors.push(...r.errors);
  const re = new RegExp(`^${ctx.netnsPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-([0-9a-f]{64})$`);
  let names: string[] = [];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    /* no namespaces at all */
  }
  for (const n of names) {
    const id = re.exec(n)?.[1];
    // a namespace of a container this root does not know may be another root's (--network none has no attachment)
    if (!id || keep.has(id) || !mine.has(id)) continue;
    try {
      removeNetns(n);
      removed.add(id);
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  return { removed: [...removed], errors };
}
