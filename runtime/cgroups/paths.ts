// cgroupsPath (runtime-spec config-linux.md "Cgroups Path") -> one directory per hierarchy.
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { CgroupError } from './errors.js';
import { layoutOf, ownCgroups, readMounts, type CgroupLayout, type CgroupMount, type CgroupMounts } from './layout.js';

export interface CgroupPaths {
  layout: CgroupLayout;
  /** The cgroupsPath, normalised: "/lxr/<id>" (absolute) or "a/b" (relative to the runtime's own cgroup). */
  path: string;
  /** controller (v1 name, "name=systemd") or "unified" -> absolute directory */
  dirs: Record<string, string>;
}

export interface ResolveOptions {
  id: string;
  cgroupsPath?: string;
  systemd?: boolean;
  /** For tests and embedders: the mounts and own cgroups to resolve against (default: this process's). */
  mounts?: CgroupMounts;
  own?: Map<string, string>;
}

/**
 * Clean a path lexically. Unlike runc's CleanPath, which silently clamps "/../x" to "/x",
 * a ".." that would leave the starting point is an error: the user meant something else.
 */
function cleanSegments(p: string, what: string): string[] {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(what)} escapes its cgroup hierarchy with ".."`);
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return out;
}

/** systemd slice names: "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice (systemd.slice(5)). */
function expandSlice(slice: string, cgroupsPath: string): string {
  if (slice === '-.slice') return '';
  if (!slice.endsWith('.slice') || slice.includes('/')) {
    throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(cgroupsPath)}: ${JSON.stringify(slice)} is not a systemd slice name (want e.g. "system.slice")`);
  }
  const base = slice.slice(0, -'.slice'.length);
  if (base === '' || base.startsWith('-') || base.endsWith('-') || base.includes('--')) {
    throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(cgroupsPath)}: invalid slice name ${JSON.stringify(slice)}`);
  }
  let acc = '';
  let path = '';
  for (const part of base.split('-')) {
    acc = acc ? `${acc}-${part}` : part;
    path += `/${acc}.slice`;
  }
  return path;
}

function systemdPath(id: string, cgroupsPath: string | undefined): string {
  if (!existsSync('/run/systemd/system')) {
    throw new CgroupError(
      `linux.cgroupsPath: the systemd cgroup driver needs systemd running as PID 1 (/run/systemd/system is missing); run without --systemd-cgroup`,
    );
  }
  // "slice:prefix:name" (runc's convention); empty parts take runc's defaults.
  const spec = cgroupsPath ?? '';
  const parts = spec === '' ? ['', 'lxr', id] : spec.split(':');
  if (parts.length !== 3) {
    throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(spec)}: with --systemd-cgroup it must be "slice:prefix:name"`);
  }
  const [slice, prefix, name] = parts as [string, string, string];
  if (name === '' || name.includes('/') || prefix.includes('/')) {
    throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(spec)}: the name part must be non-empty and have no "/"`);
  }
  const unit = name.endsWith('.slice') ? name : `${prefix ? `${prefix}-` : ''}${name}.scope`;
  // lxr has no D-Bus client: it creates the same directories systemd would, through cgroupfs.
  return `${expandSlice(slice || 'system.slice', spec)}/${unit}`;
}

function dirFor(mount: CgroupMount, own: string | undefined, segments: string[], absolute: boolean, key: string): string {
  let base: string[];
  if (absolute) {
    base = [];
  } else {
    if (own === undefined) throw new CgroupError(`linux.cgroupsPath: cannot find this process's ${key} cgroup in /proc/self/cgroup`);
    // Own cgroup path is relative to the hierarchy root; the mount may show only a subtree of it.
    const rootSegs = cleanSegments(mount.root, mount.root);
    const ownSegs = cleanSegments(own, own);
    base = rootSegs.every((s, i) => ownSegs[i] === s) ? ownSegs.slice(rootSegs.length) : ownSegs;
  }
  return posix.join(mount.mountPoint, ...base, ...segments);
}

export function resolveCgroupPaths(opts: ResolveOptions): CgroupPaths {
  const { id } = opts;
  if (!id || id.includes('/') || id === '.' || id === '..') {
    throw new CgroupError(`container id ${JSON.stringify(id)} cannot name a cgroup`);
  }
  const mounts = opts.mounts ?? readMounts();
  const layout = layoutOf(mounts);
  let raw: string;
  if (opts.systemd) raw = systemdPath(id, opts.cgroupsPath);
  else raw = opts.cgroupsPath === undefined || opts.cgroupsPath === '' ? `/lxr/${id}` : opts.cgroupsPath;

  const absolute = raw.startsWith('/');
  const segments = cleanSegments(raw, raw);
  if (segments.length === 0) {
    throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(raw)} names ${absolute ? 'the hierarchy root' : "the runtime's own cgroup"}, not a cgroup of its own`);
  }
  const path = (absolute ? '/' : '') + segments.join('/');
  const own = opts.own ?? (absolute ? new Map<string, string>() : ownCgroups());

  const dirs: Record<string, string> = {};
  if (layout !== 'v2') {
    for (const [key, mount] of mounts.v1) dirs[key] = dirFor(mount, own.get(key), segments, absolute, key);
  }
  if (mounts.unified) dirs.unified = dirFor(mounts.unified, own.get('unified'), segments, absolute, 'unified');
  return { layout, path, dirs };
}
