// config.json from an image config (conversion.md) and the runc-like default spec.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromImage } from '../bundle/config.js';
import { defaultSpec } from '../../oci-spec/default.js';
import { validateConfig } from '../../oci-spec/validators.generated.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const rootfs = join(dir, 'rootfs');
mkdirSync(join(rootfs, 'etc'), { recursive: true });
writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:www:/var/www:/bin/sh\n# comment\nbroken line\n');
writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nwww:x:33:\nlog:x:4:web\nstaff:x:50:root,web\n');

t.test('defaultSpec matches runc spec and validates', async (t) => {
  const s = defaultSpec();
  t.ok(validateConfig(s), JSON.stringify(validateConfig.errors));
  t.same(s.linux!.namespaces!.map((n) => n.type), ['pid', 'network', 'ipc', 'uts', 'mount']);
  t.same(s.mounts!.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
  t.same(s.process!.capabilities!.bounding, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
  t.ok(s.linux!.maskedPaths!.includes('/proc/kcore'));
  t.ok(s.linux!.readonlyPaths!.includes('/proc/sys'));
  t.same(s.process!.args, ['sh']);
  t.same(defaultSpec({ args: ['echo', 'hi'] }).process!.args, ['echo', 'hi']);
  const r = defaultSpec({ rootless: true });
  t.ok(validateConfig(r), JSON.stringify(validateConfig.errors));
  t.same(r.linux!.namespaces!.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'user']);
  t.same(r.linux!.uidMappings, [{ containerID: 0, hostID: process.geteuid!(), size: 1 }]);
  t.notOk(r.mounts!.some((m) => m.type === 'cgroup'));
  t.notOk(r.mounts!.find((m) => m.destination === '/dev/pts')!.options!.includes('gid=5'));
});

t.test('Entrypoint and Cmd, Env, WorkingDir', async (t) => {
  const c = (config: object) => configFromImage({ config } as never, rootfs);
  t.same(c({ Entrypoint: ['/e', '-x'], Cmd: ['a', 'b'] }).process!.args, ['/e', '-x', 'a', 'b'], 'Cmd appended to Entrypoint');
  t.same(c({ Cmd: ['/bin/sh', '-c', 'x'] }).process!.args, ['/bin/sh', '-c', 'x']);
  t.same(c({ Entrypoint: ['/e'], Cmd: null }).process!.args, ['/e']);
  const s = c({ Env: ['PATH=/x', 'A=1'], WorkingDir: '/work' });
  t.same(s.process!.env, ['PATH=/x', 'A=1', 'HOME=/root'], 'image PATH kept; HOME added from passwd');
  t.equal(s.process!.cwd, '/work');
  t.ok(c({}).process!.env!.some((e) => e.startsWith('PATH=/usr/local/sbin')), 'default PATH when the image has none');
  t.equal(c({}).process!.cwd, '/');
  t.equal(c({}).process!.terminal, false);
  t.ok(validateConfig(s), JSON.stringify(validateConfig.errors));
});

t.test('Config.User resolved through the rootfs', async (t) => {
  const u = (User: string) => configFromImage({ config: { User } }, rootfs).process!.user;
  t.same(u('web'), { uid: 33, gid: 33, additionalGids: [4, 50] }, 'name: uid, gid and supplementary groups');
  t.same(u('33'), { uid: 33, gid: 33 }, 'numeric uid: gid from passwd, no additional gids');
  t.same(u('1234'), { uid: 1234, gid: 0 }, 'numeric uid not in passwd');
  t.same(u('web:staff'), { uid: 33, gid: 50 }, 'name:group');
  t.same(u('web:7'), { uid: 33, gid: 7 });
  t.same(u('5:6'), { uid: 5, gid: 6 });
  t.same(u(''), { uid: 0, gid: 0 });
  t.throws(() => u('nobody'), { message: 'user "nobody" (Config.User "nobody") is not in the image\'s /etc/passwd' });
  t.throws(() => u('web:nogroup'), { message: 'group "nogroup" (Config.User "web:nogroup") is not in the image\'s /etc/group' });
});

t.test('/etc/passwd is read inside the rootfs, even through a symlink', async (t) => {
  const r2 = join(dir, 'rootfs2');
  mkdirSync(join(r2, 'etc'), { recursive: true });
  mkdirSync(join(r2, 'real'));
  writeFileSync(join(r2, 'real/passwd'), 'inside:x:77:77::/:/bin/sh\n');
  symlinkSync('/real/passwd', join(r2, 'etc/passwd')); // absolute: must mean <rootfs>/real/passwd
  t.same(configFromImage({ config: { User: 'inside' } }, r2).process!.user, { uid: 77, gid: 77 });
  t.throws(() => configFromImage({ config: { User: 'root' } }, r2), 'the host /etc/passwd is not consulted');
});

t.test('annotations: implicit ones, Labels win', async (t) => {
  const s = configFromImage(
    {
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
      'os.features': ['a', 'b'],
      author: 'me',
      created: '2020-01-01T00:00:00Z',
      config: {
        StopSignal: 'SIGQUIT',
        ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
        Volumes: { '/data': {} },
        Labels: { 'org.opencontainers.image.architecture': 'from-label', x: 'y' },
      },
    },
    rootfs,
  );
  t.same(s.annotations, {
    'org.opencontainers.image.os': 'linux',
    'org.opencontainers.image.architecture': 'from-label',
    'org.opencontainers.image.variant': 'v8',
    'org.opencontainers.image.os.features': 'a,b',
    'org.opencontainers.image.author': 'me',
    'org.opencontainers.image.created': '2020-01-01T00:00:00Z',
    'org.opencontainers.image.stopSignal': 'SIGQUIT',
    'org.opencontainers.image.exposedPorts': '53/udp,8080/tcp',
    'org.opencontainers.image.volumes': '/data',
    x: 'y',
  });
  t.ok(validateConfig(s));
});
