// End to end with lxr-runtime: containers whose config.json joins a netns made by
// createNetns and attached with attachContainer, with the hosts/hostname/resolv.conf files
// from dnsFiles bind-mounted. From inside, a container has eth0 with its address, its
// hostname, and reaches the other container by name.
import t from 'tap';
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as net from '../network/manager/index.js';
import { haveBusybox, makeBundle, makeRoot, runtime } from '../../runtime/test/helpers/bundle.js';
import { httpServerIn, testNetwork } from './helpers/netns.js';

t.test('a container on the network reaches another one by name', async (t) => {
  if (!haveBusybox) {
    t.fail('busybox is needed (apt-get install -y busybox-static)');
    return;
  }
  if (!existsSync(join(import.meta.dirname, '..', '..', 'dist', 'lxr-runtime.js'))) {
    t.fail('lxr-runtime is not built (npm run build)');
    return;
  }
  const tn = await testNetwork(t, 10);
  const nsWeb = tn.netns('web');
  const nsCli = tn.netns('cli');
  const web = await tn.attach({ containerId: `e2e-web-${process.pid}`, name: 'web', netnsPath: nsWeb });
  const idCli = `e2e-cli-${process.pid}`;
  const cli = await tn.attach({ containerId: idCli, name: 'client', netnsPath: nsCli });
  const files = await net.dnsFiles({ ...tn.opts, containerId: idCli, name: 'client' });
  await httpServerIn(t, nsWeb, 8080, 'web');

  const { root, cleanup: rmRoot } = makeRoot();
  t.teardown(rmRoot);
  const bundle = makeBundle((s) => {
    s.process!.args = ['sh', '-c', 'hostname; ip -4 -o addr show eth0; cat /etc/hosts; wget -q -O - http://web:8080/'];
    s.hostname = 'client';
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: nsCli } : n));
    if (!s.linux!.namespaces.some((n) => n.type === 'network')) s.linux!.namespaces.push({ type: 'network', path: nsCli });
    for (const [dst, src] of [['/etc/hosts', files.hostsPath], ['/etc/hostname', files.hostnamePath], ['/etc/resolv.conf', files.resolvConfPath]]) {
      s.mounts!.push({ destination: dst, type: 'bind', source: src, options: ['rbind', 'ro'] });
    }
  });
  t.teardown(bundle.cleanup);
  for (const a of ['ip', 'wget']) symlinkSync('busybox', join(bundle.rootfs, 'bin', a));
  const r = runtime(root, ['run', '--bundle', bundle.dir, idCli]);
  t.equal(r.status, 0, `the container ran: ${r.stderr}`);
  t.match(r.stdout, /^client$/m, 'its hostname');
  t.match(r.stdout, new RegExp(`inet ${cli.ip.replace(/\./g, '\\.')}/24`), 'eth0 has its address');
  t.match(r.stdout, new RegExp(`^${web.ip.replace(/\./g, '\\.')}\\tweb$`, 'm'), '/etc/hosts lists the other container');
  t.match(r.stdout, /hello from web/, 'and it is reached by name');
  runtime(root, ['delete', '--force', idCli]);
});
