// lxr-image: pull, push and manage images in an OCI image layout store, and unpack
// them into OCI bundles. Each command parses its arguments and calls the library.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
// The registry client (undici) and the unpacker are loaded only by the commands that
// use them: local commands (images, inspect, rm, gc, tag) start ~50 ms faster.
import type { pullImage } from '../registry/pull.js';
import { gcStore, inspectImage, listImages, removeImage, resolveImage, tagImage } from '../layout/images.js';
import { describeName } from '../core/reference.js';
import { defaultStorePath } from '../layout/store.js';
import { ImageError } from '../core/errors.js';
import type { RemoteOptions } from '../registry/session.js';
import type { RetryPolicy } from '../core/retry.js';
import { progressRenderer } from './progress.js';
import { humanSize, table } from '../../common/cli/format.js';
import { setMemoryTuning } from '../core/blobs-memory.js';
import { skipHelpCache } from '../../common/cli/yargs-help.js';
import { learnCommand } from '../../common/cli/code-cache.js';
import { LxrError } from '../../common/errors.js';

interface Globals {
  store?: string;
  'registries-config'?: string;
  'insecure-registry'?: string[];
  'registry-mirror'?: string[];
  creds?: string;
  authfile?: string;
  debug?: boolean;
}

/** The image argument of pull, push, inspect, tag, rm and unpack. */
const IMAGE = { type: 'string', demandOption: true, describe: 'image reference' } as const;

/** pull's and push's choice of platforms, and --quiet */
function transferFlags(all: string) {
  return {
    platform: { type: 'string', describe: 'os/arch[/variant] (default: this host)' },
    'all-platforms': { type: 'boolean', describe: all },
    quiet: { alias: 'q', type: 'boolean', describe: 'no progress; print only the digest' },
  } as const;
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

// the benchmark switches of core/blobs-memory.ts (bench/pull/README.md)
setMemoryTuning({ gc: process.env.LXR_NO_GC !== '1', liftoff: process.env.LXR_WASM_TURBOFAN !== '1' });

function envRetry(): Partial<RetryPolicy> | undefined {
  const r: Partial<RetryPolicy> = {};
  if (process.env.LXR_IMAGE_RETRY_ATTEMPTS) r.attempts = Math.max(1, Number(process.env.LXR_IMAGE_RETRY_ATTEMPTS));
  if (process.env.LXR_IMAGE_RETRY_BASE_MS) r.baseDelayMs = Math.max(0, Number(process.env.LXR_IMAGE_RETRY_BASE_MS));
  return Object.keys(r).length ? r : undefined;
}

function remote(a: Globals): RemoteOptions {
  const o: RemoteOptions = {};
  if (a['registries-config']) o.registriesConfig = a['registries-config'];
  if (a['insecure-registry']?.length) o.insecureRegistries = a['insecure-registry'];
  if (a['registry-mirror']?.length) o.registryMirrors = a['registry-mirror'];
  if (a.creds) o.credentials = a.creds;
  if (a.authfile) o.authFile = a.authfile;
  const r = envRetry();
  if (r) o.retry = r;
  return o;
}

const store = (a: Globals) => defaultStorePath(a.store || process.env.LXR_IMAGE_STORE);

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function buildCli(argv: string[]): Argv {
  return yargs(argv)
    // an array option takes one value per occurrence, so that `--insecure-registry HOST IMAGE`
    // leaves IMAGE to the command (as skopeo's and podman's flags do)
    .parserConfiguration({ 'greedy-arrays': false })
    .middleware((a) => learnCommand(a._[0]))
    .scriptName('lxr-image')
    .usage('$0 <command> [options]')
    .option('store', { type: 'string', describe: 'image store (OCI layout); default $LXR_IMAGE_STORE or /var/lib/lxr/images (~/.local/share/lxr/images as a user)', global: true })
    .option('registries-config', { type: 'string', describe: 'registries config file (default /etc/lxr/registries.json)', global: true })
    .option('insecure-registry', { type: 'string', array: true, describe: 'allow plain HTTP to this host:port (repeatable)', global: true })
    .option('registry-mirror', { type: 'string', array: true, describe: 'mirror to try first for docker.io (repeatable)', global: true })
    .option('creds', { type: 'string', describe: 'registry credentials user:password', global: true })
    .option('authfile', { type: 'string', describe: 'credentials file (default ~/.docker/config.json)', global: true })
    .option('debug', { type: 'boolean', describe: 'print stack traces on errors', global: true })
    .command(
      'pull <image>',
      'pull an image from a registry into the store',
      (y) =>
        y
          .positional('image', IMAGE)
          .options(transferFlags('keep the whole index with every platform'))
          .option('concurrency', { type: 'number', default: 3, describe: 'layers downloaded at once' }),
      async (a) => {
        const mode = a.quiet ? 'none' : process.stderr.isTTY ? 'tty' : 'lines';
        const r = progressRenderer(mode);
        const opts: Parameters<typeof pullImage>[0] = { ...remote(a), reference: a.image, store: store(a), onProgress: r.onProgress, concurrency: a.concurrency, signal: interruptSignal() };
        if (a.platform) opts.platform = a.platform;
        if (a['all-platforms']) opts.allPlatforms = true;
        try {
          const { pullImage } = await import('../registry/pull.js');
          const res = await pullImage(opts);
          r.finish();
          if (a.quiet) out(res.manifestDigest);
          else out(`Pulled ${res.reference}\nDigest: ${res.manifestDigest}`);
        } finally {
          r.finish();
        }
      },
    )
    .command(
      'push <image> [destination]',
      'push an image from the store to a registry',
      (y) =>
        y
          .positional('image', IMAGE)
          .positional('destination', { type: 'string', describe: 'remote reference (default: the image name)' })
          .options(transferFlags('push a whole index')),
      async (a) => {
        const opts: Parameters<typeof import('../registry/push.js').pushImage>[0] = { ...remote(a), reference: a.image, store: store(a), signal: interruptSignal() };
        if (a.destination) opts.destination = a.destination;
        if (a['all-platforms']) opts.allPlatforms = true;
        if (a.platform) opts.platform = a.platform;
        if (!a.quiet) opts.onProgress = (e) => e.type !== 'manifest-done' && process.stderr.write(`Blob ${e.digest.slice(7, 19)} ${e.type === 'blob-skip' ? 'already on the registry' : 'pushed'}\n`);
        const { pushImage } = await import('../registry/push.js');
        const res = await pushImage(opts);
        if (a.quiet) out(res.manifestDigest);
        else out(`Pushed ${res.reference}\nDigest: ${res.manifestDigest}`);
      },
    )
    .command(
      ['images', 'list', 'ls'],
      'list images in the store',
      (y) => y.option('json', { type: 'boolean' }).option('quiet', { alias: 'q', type: 'boolean', describe: 'references only' }),
      async (a) => {
        const imgs = await listImages(store(a));
        if (a.json) return out(JSON.stringify(imgs, null, 2));
        if (a.quiet) return imgs.forEach((i) => out(i.reference));
        const rows = [['REFERENCE', 'DIGEST', 'PLATFORM', 'SIZE'], ...imgs.map((i) => [i.reference, i.digest.slice(0, 19), i.platforms.join(',') || '-', humanSize(i.size)])];
        out(table(rows, 2));
      },
    )
    .command(
      'inspect <image>',
      'show an image manifest and config',
      (y) =>
        y
          .positional('image', IMAGE)
          .option('raw', { type: 'boolean', describe: 'print the manifest bytes as stored' })
          .option('config', { type: 'boolean', describe: 'with --raw: print the config bytes instead' })
          .option('platform', { type: 'string' }),
      async (a) => {
        const r = await inspectImage(store(a), a.image, a.platform);
        if (a.raw) {
          process.stdout.write(a.config ? r.rawConfig : r.rawManifest);
          return;
        }
        out(JSON.stringify({ reference: r.reference, digest: r.digest, mediaType: r.mediaType, index: r.index?.digest, manifest: r.manifest, config: r.config }, null, 2));
      },
    )
    .command(
      'resolve <image>',
      'print the manifest digest an image name points at',
      (y) => y.positional('image', IMAGE).option('platform', { type: 'string' }),
      async (a) => {
        const d = await resolveImage(store(a), a.image, a.platform);
        if (!d) throw new ImageError('NOT_FOUND', `image ${describeName(a.image)} is not in store ${store(a)}`);
        out(d);
      },
    )
    .command(
      ['rm <images..>', 'rmi <images..>'],
      'remove image names from the store (blobs go with gc, or --gc)',
      (y) => y.positional('images', { type: 'string', array: true, demandOption: true }).option('gc', { type: 'boolean', describe: 'also remove unreferenced blobs' }),
      async (a) => {
        for (const img of a.images as string[]) {
          const r = await removeImage(store(a), img);
          out(`Removed ${r.reference}`);
        }
        if (a.gc) {
          const g = await gcStore(store(a));
          out(`Removed ${g.removed.length} blobs, freed ${humanSize(g.freedBytes)}`);
        }
      },
    )
    .command(
      'gc',
      'remove blobs no image references, and leftover partial downloads',
      (y) => y,
      async (a) => {
        const g = await gcStore(store(a));
        out(`Removed ${g.removed.length} blobs, freed ${humanSize(g.freedBytes)}`);
      },
    )
    .command(
      'save <images..>',
      'write images to an oci-archive, an OCI layout directory (oci-dir: what umoci and skopeo read) or a docker-archive',
      (y) =>
        y
          .positional('images', { type: 'string', array: true, demandOption: true })
          .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the archive file, or the directory for oci-dir' })
          .option('format', { type: 'string', default: 'oci-archive', choices: ['oci-archive', 'oci-dir', 'docker-archive'] })
          .option('platform', { type: 'string' }),
      async (a) => {
        const { saveImages } = await import('../layout/archive.js');
        const r = await saveImages({ store: store(a), references: a.images, output: a.output, format: a.format as 'oci-archive', ...(a.platform ? { platform: a.platform } : {}) });
        for (const i of r.images) out(`Saved ${i.reference} ${i.digest}`);
      },
    )
    .command(
      ['copy <image> <destination>', 'export <image> <destination>'],
      'write an image as an OCI layout directory that umoci and skopeo read (OCI manifests, as skopeo converts them)',
      (y) =>
        y
          .positional('image', IMAGE)
          .positional('destination', { type: 'string', demandOption: true, describe: 'directory (an OCI layout)' })
          .option('format', { type: 'string', default: 'oci', choices: ['oci'] })
          .option('platform', { type: 'string' }),
      async (a) => {
        const { saveImages } = await import('../layout/archive.js');
        const r = await saveImages({ store: store(a), references: [a.image], output: a.destination, format: 'oci-dir', ...(a.platform ? { platform: a.platform } : {}) });
        for (const i of r.images) out(`Copied ${i.reference} ${i.digest}`);
      },
    )
    .command(
      'load',
      'load images from an oci-archive, an OCI layout directory or a docker-archive',
      (y) => y.option('input', { alias: 'i', type: 'string', demandOption: true }).option('tag', { type: 'string', describe: 'name the image so' }),
      async (a) => {
        const { loadImages } = await import('../layout/archive.js');
        const r = await loadImages({ store: store(a), input: a.input, ...(a.tag ? { tag: a.tag } : {}) });
        for (const i of r.images) out(`Loaded ${i.reference} ${i.digest}`);
      },
    )
    .command(
      'import <tarball> <reference>',
      'make a one-layer image of a rootfs tarball (plain, gzip or zstd)',
      (y) => y.positional('tarball', { type: 'string', demandOption: true }).positional('reference', { type: 'string', demandOption: true }).option('cmd', { type: 'string', array: true, describe: 'the image\'s Cmd (one argument per --cmd)' }),
      async (a) => {
        const { importRootfs } = await import('../layout/archive.js');
        const r = await importRootfs({ store: store(a), input: a.tarball, reference: a.reference, ...(a.cmd?.length ? { cmd: a.cmd.map(String) } : {}) });
        out(`Imported ${r.reference} ${r.digest}`);
      },
    )
    .command(
      'tag <source> <target>',
      'give an image in the store another name',
      (y) => y.positional('source', { type: 'string', demandOption: true }).positional('target', { type: 'string', demandOption: true }),
      async (a) => {
        out(`Tagged ${await tagImage(store(a), a.source, a.target)}`);
      },
    )
    .command(
      'login [registry]',
      'check credentials against a registry and save them',
      (y) =>
        y
          .positional('registry', { type: 'string', describe: 'registry host (default docker.io)' })
          .option('username', { alias: 'u', type: 'string' })
          .option('password', { alias: 'p', type: 'string' })
          .option('password-stdin', { type: 'boolean' }),
      async (a) => {
        let creds: { username: string; password: string } | undefined;
        if (a.username) {
          const password = a['password-stdin'] ? await readStdin() : a.password;
          if (password === undefined) throw new ImageError('CONFIG', 'login needs --password or --password-stdin');
          creds = { username: a.username, password };
        } else if (a.creds) {
          const i = a.creds.indexOf(':');
          if (i <= 0) throw new ImageError('CONFIG', 'credentials must be given as user:password');
          creds = { username: a.creds.slice(0, i), password: a.creds.slice(i + 1) };
        } else throw new ImageError('CONFIG', 'login needs --username (and --password or --password-stdin)');
        const opts: Parameters<typeof import('../registry/login.js').login>[0] = { ...remote(a), credentials: creds };
        if (a.registry) opts.registry = a.registry;
        const { login } = await import('../registry/login.js');
        const r = await login(opts);
        out(`Login Succeeded for ${r.registry} (saved in ${r.authFile})`);
      },
    )
    .command(
      'logout [registry]',
      'remove saved credentials for a registry',
      (y) => y.positional('registry', { type: 'string' }),
      async (a) => {
        const opts: Parameters<typeof import('../registry/login.js').logout>[0] = {};
        if (a.registry) opts.registry = a.registry;
        if (a.authfile) opts.authFile = a.authfile;
        const { logout } = await import('../registry/login.js');
        const r = await logout(opts);
        if (!r.removed) throw new ImageError('NOT_FOUND', `not logged in to ${r.registry}`);
        out(`Removed login credentials for ${r.registry}`);
      },
    )
    .command(
      'unpack <image> <bundle>',
      'unpack an image from the store into an OCI runtime bundle',
      (y) =>
        y
          .positional('image', IMAGE)
          .positional('bundle', { type: 'string', demandOption: true })
          .option('rootless', { type: 'boolean', describe: 'no chown: every file belongs to you (umoci --rootless); without it an ordinary user unpacks in a user namespace mapped with /etc/subuid, owners shifted' })
          .option('platform', { type: 'string' }),
      async (a) => {
        const s = store(a);
        const manifest = await resolveImage(s, a.image, a.platform);
        if (!manifest) throw new ImageError('NOT_FOUND', `image ${describeName(a.image)} is not in store ${s}`);
        if ((process.geteuid?.() ?? 0) !== 0 && !a.rootless) {
          // an ordinary user: unpack as root of the user namespace mapped with their
          // /etc/subuid ranges (owners shifted), then map config.json the same way
          const { unpackBundleInUserns } = await import('../bundle/userns.js');
          await unpackBundleInUserns({ store: s, image: a.image, bundle: a.bundle, ...(a.platform ? { platform: a.platform } : {}) });
          return;
        }
        const opts: Parameters<typeof import('../bundle/unpack.js').unpackBundle>[0] = { layout: s, manifest, bundle: a.bundle };
        if (a.rootless) opts.rootless = true;
        const [{ unpackBundle }, { setIdMapHint }] = await Promise.all([import('../bundle/unpack.js'), import('../unpack/apply-layer.js')]);
        setIdMapHint(process.env.LXR_IDMAP_HINT);
        await unpackBundle(opts);
      },
    )
    .demandCommand(1, 'give a command; see lxr-image --help')
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
}

class UsageError extends LxrError {}

// Ctrl-C during a pull or push: stop the transfers, keep partial downloads for the next
// pull (they are only ever renamed into blobs/ once verified), exit 130.
let interrupted: string | undefined;
function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = sig;
      ac.abort(new ImageError('HTTP', `interrupted by ${sig}; partial downloads are kept for the next pull`));
    });
  }
  return ac.signal;
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    await skipHelpCache(buildCli(argv)).parseAsync();
    return 0;
  } catch (e) {
    const err = e as Error;
    if (interrupted) {
      process.stderr.write(`lxr-image: interrupted by ${interrupted}; partial downloads are kept for the next pull\n`);
      return 130;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`lxr-image: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`lxr-image: ${(err?.message ?? String(e)).split('\n')[0]}\n`);
    if (debug && err?.stack) process.stderr.write(err.stack + '\n');
    return 1;
  }
}

void main(hideBin(process.argv)).then((code) => {
  process.exitCode = code;
});
