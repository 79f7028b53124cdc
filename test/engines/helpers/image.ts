// A small busybox-static image, built by the tests as a docker-archive tar (the
// `docker save` format: manifest.json, the config, one layer tar), which both
// `ctr image import` and `podman load` read. No registry is involved.
import { tarOf, type TarEntry as Entry } from '../../helpers/tar.js';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

const APPLETS = [
  'sh', 'ls', 'cat', 'echo', 'hostname', 'id', 'true', 'false', 'sleep', 'ps', 'mount', 'stat', 'touch', 'mkdir',
  'grep', 'readlink', 'test', 'env', 'pwd', 'wc', 'head', 'kill', 'ip', 'ifconfig', 'tty', 'stty', 'rm', 'sed', 'tr',
];




const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The root filesystem: busybox and its applets, /etc/passwd with an unprivileged user. */
export function rootfsLayer(): Buffer {
  if (!BUSYBOX) throw new Error('busybox is not installed (apt-get install busybox-static)');
  const entries: Entry[] = [];
  for (const d of ['bin/', 'etc/', 'tmp/', 'proc/', 'sys/', 'dev/', 'root/', 'home/', 'home/user/', 'var/', 'run/']) {
    entries.push({ path: d, type: 'dir', mode: d === 'tmp/' ? 0o1777 : 0o755 });
  }
  entries.push({ path: 'bin/busybox', type: 'file', data: readFileSync(BUSYBOX), mode: 0o755 });
  for (const a of APPLETS) entries.push({ path: `bin/${a}`, type: 'symlink', link: 'busybox' });
  entries.push({ path: 'etc/passwd', type: 'file', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n') });
  entries.push({ path: 'etc/group', type: 'file', data: Buffer.from('root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n') });
  return tarOf(entries);
}

/**
 * Write a docker-archive with one image tagged `name` (e.g. "localhost/lxr-test:1")
 * to `file`. Returns the image id (the config digest).
 */
export { tarOf };

export function writeDockerArchive(file: string, name: string): string {
  const layer = rootfsLayer();
  const layerSum = sha(layer);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerSum}`] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'lxr engine test' }],
  }));
  const configSum = sha(config);
  const manifest = Buffer.from(JSON.stringify([{ Config: `${configSum}.json`, RepoTags: [name], Layers: [`${layerSum}/layer.tar`] }]));
  writeFileSync(file, tarOf([
    { path: `${layerSum}/`, type: 'dir' },
    { path: `${layerSum}/layer.tar`, type: 'file', data: layer },
    { path: `${configSum}.json`, type: 'file', data: config },
    { path: 'manifest.json', type: 'file', data: manifest },
  ]));
  return `sha256:${configSum}`;
}
