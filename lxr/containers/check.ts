// `lxr system check [--repair]` (as podman 5's `podman system check`): what the state holds
// that no container owns, one line each. --repair removes what no container owns; a broken
// record stays (its container may still run): ps -a shows it as broken and rm -f removes it.
//
// Ownership follows `lxr gc`: this root's created and running containers own their mount,
// runtime state, cgroup, namespace and network; the network state is shared by every root,
// so an attachment of a container this root does not know is another root's while its
// namespace exists.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LxrContext } from '../core/context.js';
import { errorMessage } from '../../common/errors.js';
import { listIds, readRecord as readRuntimeRecord, initAlive, deleteContainer as rtDelete } from '../../runtime/index.js';
import { unmountOverlay } from '../snapshots/overlay.js';
import { ID_RE, containerDir, listBroken, listRecords } from './store.js';
import { liveState } from './status.js';
import { netnsName, networkOptions } from './network.js';

export interface Finding {
  /** container | runtime | mount | netns | attachment | rule | veth | lease | cgroup | snapshot | blob */
  kind: string;
  /** one line: the thing and why it is wrong */
  text: string;
  /** --repair: remove it (absent: reported only) */
  repair?: () => Promise<void> | void;
  repaired?: boolean;
  error?: string;
}

const CONTROLLERS_ROOT = '/sys/fs/cgroup';

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${dir}/`));
}

/** Directories of the cgroup parent lxr puts containers under, one per hierarchy. */
function cgroupParents(parent: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(CONTROLLERS_ROOT);
  } catch {
    return out;
  }
  if (existsSync(join(CONTROLLERS_ROOT, 'cgroup.controllers'))) return existsSync(join(CONTROLLERS_ROOT, parent)) ? [join(CONTROLLERS_ROOT, parent)] : [];
  for (const c of entries) if (existsSync(join(CONTROLLERS_ROOT, c, parent))) out.push(join(CONTROLLERS_ROOT, c, parent));
  return out;
}

function cgroupProcs(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function systemCheck(ctx: LxrContext, o: { repair?: boolean } = {}): Promise<Finding[]> {
  const found: Finding[] = [];
  const records = listRecords(ctx);
  const broken = listBroken(ctx);
  const byId = new Map(records.map((r) => [r.id, r]));
  const live = new Set(records.filter((r) => ['created', 'running'].includes(liveState(ctx, r).status)).map((r) => r.id));
  const brokenIds = new Set(broken.map((b) => b.id));
  // what may still run: live containers, and broken records (unknown)
  const owned = new Set([...live, ...brokenIds]);

  // records: broken ones, and directories without one (a create that died)
  for (const b of broken) {
    found.push({ kind: 'container', text: `container ${b.name ?? b.id.slice(0, 12)}: its record ${b.file} is broken (${b.reason}); ps -a marks it broken, rm -f ${b.id.slice(0, 12)} removes what is left` });
  }
  let dirs: string[] = [];
  try {
    dirs = readdirSync(ctx.containers).filter((f) => ID_RE.test(f));
  } catch {
    /* no containers yet */
  }
  for (const id of dirs) {
    if (byId.has(id) || brokenIds.has(id) || existsSync(join(containerDir(ctx, id), 'container.json'))) continue;
    const dir = containerDir(ctx, id);
    found.push({
      kind: 'container', text: `container directory ${dir} has no record (a create that died)`,
      repair: () => {
        unmountOverlay(dir);
        rmSync(dir, { recursive: true, force: true });
      },
    });
  }

  // runtime state without a record, and records whose runtime state outlived them
  for (const id of listIds(ctx.runtimeRoot)) {
    if (owned.has(id)) continue;
    let what = 'no process';
    try {
      const rec = readRuntimeRecord(ctx.runtimeRoot, id);
      if (initAlive(rec)) what = `init pid ${rec.pid} still running`;
    } catch (e) {
      what = errorMessage(e);
    }
    const whose = byId.has(id) ? `of stopped container ${byId.get(id)!.name}` : 'without a record';
    found.push({ kind: 'runtime', text: `runtime state ${join(ctx.runtimeRoot, id)} ${whose} (${what})`, repair: () => rtDelete(ctx.runtimeRoot, id, true) });
  }

  // overlay mounts of containers that do not run
  for (const m of mountsUnder(ctx.containers)) {
    const id = m.slice(ctx.containers.length + 1).split('/')[0]!;
    if (owned.has(id)) continue;
    found.push({ kind: 'mount', text: `mount ${m}: container ${byId.get(id)?.name ?? id.slice(0, 12)} ${byId.has(id) ? 'is not running' : 'does not exist'}`, repair: () => unmountOverlay(containerDir(ctx, id)) });
  }

  // network namespaces of this root's containers that do not run
  const prefix = `${ctx.netnsPrefix}-`;
  let netns: string[] = [];
  try {
    netns = readdirSync('/run/netns').filter((n) => n.startsWith(prefix) && ID_RE.test(n.slice(prefix.length)));
  } catch {
    /* none */
  }
  const mine = new Set([...byId.keys(), ...brokenIds]);
  for (const n of netns) {
    const id = n.slice(prefix.length);
    if (owned.has(id) || !mine.has(id)) continue;
    found.push({ kind: 'netns', text: `network namespace /run/netns/${n}: container ${byId.get(id)?.name} is not running`, repair: async () => (await import('../network/netns.js')).removeNetns(netnsName(ctx, id)) });
  }

  // the network state: attachments, and the rules, veths and leases of no attachment
  const net = await import('../network/manager/index.js');
  const link = await import('../network/link.js');
  const hostVeth = link.hostVethName;
  const nopt = networkOptions(ctx);
  const attachments = net.listAttachments(nopt);
  const ownsAttachment = (a: { containerId: string; netns: string }) => owned.has(a.containerId) || (!mine.has(a.containerId) && existsSync(a.netns));
  for (const a of attachments) {
    if (ownsAttachment(a)) continue;
    found.push({
      kind: 'attachment', text: `network ${a.network}: attachment of ${byId.get(a.containerId)?.name ?? a.containerId.slice(0, 12)} (${a.ip}, veth ${hostVeth(a.containerId, a.ifname)}) belongs to no running container`,
      repair: () => net.detachContainer({ ...nopt, containerId: a.containerId, network: a.network }),
    });
  }
  const attachedIds = new Set(attachments.map((a) => a.containerId));
  try {
    const fw = await import('../network/firewall.js');
    // iptables is the host's: with a network state of its own (LXR_NET_STATE_DIR, as tests
    // have) rules of containers this root does not know may belong to another state's
    const ownState = !ctx.net.stateDir;
    for (const tag of fw.ruleTags()) {
      const id = tag.split(':').pop()!;
      if (attachedIds.has(id) || (!ownState && !mine.has(id))) continue;
      found.push({ kind: 'rule', text: `iptables rules tagged ${tag}: no attachment of container ${id.slice(0, 12)}`, repair: () => void fw.removeRulesWhere((t) => t === tag) });
    }
  } catch (e) {
    found.push({ kind: 'rule', text: `iptables rules could not be listed: ${errorMessage(e)}` });
  }
  const expectedVeths = new Set(attachments.map((a) => hostVeth(a.containerId, a.ifname)));
  for (const n of net.listNetworks(nopt)) {
    if (!n.bridge) continue;
    let names: string[] = [];
    try {
      names = linksOn(n.bridge);
    } catch {
      continue;
    }
    for (const v of names) {
      if (expectedVeths.has(v)) continue;
      found.push({ kind: 'veth', text: `veth ${v} on bridge ${n.bridge} (network ${n.name}): no attachment`, repair: () => link.deleteLink(v) });
    }
    for (const [file, leases] of leaseFiles(n.file)) {
      for (const [ip, lease] of Object.entries(leases)) {
        if (attachedIds.has(lease.containerId)) continue;
        found.push({
          kind: 'lease', text: `lease ${ip} in ${file} of container ${lease.containerId.slice(0, 12)}: no attachment`,
          repair: () => net.detachContainer({ ...nopt, containerId: lease.containerId, network: n.name }),
        });
      }
    }
  }

  // cgroups (and their processes) under lxr's parent with no runtime container
  const runtimeIds = new Set(listIds(ctx.runtimeRoot));
  for (const parent of cgroupParents(ctx.cgroupParent)) {
    for (const d of readdirSync(parent, { withFileTypes: true })) {
      if (!d.isDirectory() || !ID_RE.test(d.name) || runtimeIds.has(d.name) || brokenIds.has(d.name)) continue;
      const dir = join(parent, d.name);
      const pids = cgroupProcs(dir);
      found.push({
        kind: 'cgroup', text: `cgroup ${dir}${pids.length ? ` with processes ${pids.join(' ')}` : ''}: no container`,
        repair: async () => {
          for (const p of pids) {
            try {
              process.kill(p, 'SIGKILL');
            } catch {
              /* gone */
            }
          }
          const end = Date.now() + 5000;
          while (cgroupProcs(dir).length && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
          rmdirSync(dir);
        },
      });
    }
  }

  // snapshots: each is checked against its diff ID while it is unpacked, and renamed into place
  // only then; what a crash leaves is a half-unpacked .tmp-<name>-<pid>-* directory
  let snaps: string[] = [];
  try {
    snaps = readdirSync(ctx.snapshots).filter((f) => f.startsWith('.tmp-'));
  } catch {
    /* no snapshots */
  }
  for (const f of snaps) {
    const pid = Number(f.split('-').at(-2));
    if (pid && existsSync(`/proc/${pid}`) && pid !== process.pid) continue; // being unpacked now
    const p = join(ctx.snapshots, f);
    found.push({ kind: 'snapshot', text: `snapshot ${p}: a half-unpacked layer (its unpack died)`, repair: () => rmSync(p, { recursive: true, force: true }) });
  }

  // blobs that fail their digest
  const blobs = join(ctx.imageStore, 'blobs', 'sha256');
  let files: string[] = [];
  try {
    files = readdirSync(blobs).filter((f) => /^[0-9a-f]{64}$/.test(f));
  } catch {
    /* no store */
  }
  for (const f of files) {
    const p = join(blobs, f);
    let actual: string;
    try {
      actual = await sha256File(p);
    } catch (e) {
      found.push({ kind: 'blob', text: `blob sha256:${f}: ${errorMessage(e)}` });
      continue;
    }
    if (actual !== f) found.push({ kind: 'blob', text: `blob sha256:${f} fails its digest (its content is sha256:${actual}); pull the image again`, repair: () => rmSync(p, { force: true }) });
  }

  if (o.repair) {
    for (const x of found) {
      if (!x.repair) continue;
      try {
        await x.repair();
        x.repaired = true;
      } catch (e) {
        x.error = errorMessage(e);
      }
    }
  }
  return found;
}

/** Names of the links whose master is `bridge`. */
function linksOn(bridge: string): string[] {
  // sysfs lists a bridge's ports as brif/<name>
  return readdirSync(`/sys/class/net/${bridge}/brif`);
}

/** The leases.json files of a network (its IPAM dataDir), with their leases. */
function leaseFiles(conflist: string): [string, Record<string, { containerId: string }>][] {
  try {
    const list = JSON.parse(readFileSync(conflist, 'utf8'));
    const ipam = list.plugins?.[0]?.ipam;
    if (!ipam?.dataDir || ipam.type !== 'lxr-ipam') return [];
    const file = join(ipam.dataDir, list.name, 'leases.json');
    if (!existsSync(file)) return [];
    return [[file, JSON.parse(readFileSync(file, 'utf8')).leases ?? {}]];
  } catch {
    return [];
  }
}
