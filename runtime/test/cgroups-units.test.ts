// The cgroup library's pure parts: parsing, path rules, runc's v1 -> v2 conversions, and the
// device filter's reduction and encoding. No root needed.
import t from 'tap';
import { CgroupError, blkioWeightToIoWeight, cpuMaxValue, deviceFilterProgram, reduceDeviceRules, resolveCgroupPaths, sharesToWeight, swapToV2, validateResources } from '../cgroups/manager/index.js';
import { layoutOf, parseMountinfo, parseProcCgroup } from '../cgroups/layout.js';
import { parseBlkioEntries } from '../cgroups/v1/blkio.js';
import { deviceRuleString } from '../cgroups/v1/devices.js';
import { parseCpuList } from '../cgroups/stats.js';

const HYBRID_MOUNTINFO = [
  '25 20 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
  '26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
  '27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
  '28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
  '29 25 0:26 /ns /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
  '30 25 0:27 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids',
  '31 20 8:1 / / rw - ext4 /dev/sda1 rw',
].join('\n');

t.test('mountinfo: co-mounted controllers, name=systemd, mount roots, escapes', async (t) => {
  const m = parseMountinfo(HYBRID_MOUNTINFO);
  t.equal(m.v1.get('cpu')?.mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
  t.equal(m.v1.get('cpuacct')?.mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
  t.equal(m.v1.get('name=systemd')?.mountPoint, '/sys/fs/cgroup/systemd');
  t.equal(m.v1.get('memory')?.root, '/ns');
  t.equal(m.v1.get('pids')?.mountPoint, '/sys/fs/cgroup/with space');
  t.equal(m.unified?.mountPoint, '/sys/fs/cgroup/unified');
  t.equal(layoutOf(m), 'hybrid');
  t.equal(layoutOf(parseMountinfo('26 25 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw')), 'v2');
  t.equal(layoutOf(parseMountinfo('28 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory')), 'v1');
  t.throws(() => layoutOf(parseMountinfo('31 20 8:1 / / rw - ext4 /dev/sda1 rw')), /no cgroup filesystem is mounted/);
});

t.test('resolveCgroupPaths against given mounts and own cgroups', async (t) => {
  const mounts = parseMountinfo(HYBRID_MOUNTINFO);
  const own = parseProcCgroup('5:memory:/ns/runtime\n4:cpu,cpuacct:/user.slice\n3:name=systemd:/x\n2:pids:/\n0::/session\n');
  t.equal(own.get('cpuacct'), '/user.slice');
  t.equal(own.get('unified'), '/session');
  const rel = resolveCgroupPaths({ id: 'c', cgroupsPath: 'box/c', mounts, own });
  t.equal(rel.dirs.memory, '/sys/fs/cgroup/memory/runtime/box/c', 'own cgroup is taken relative to the mount root (/ns)');
  t.equal(rel.dirs.cpu, '/sys/fs/cgroup/cpu,cpuacct/user.slice/box/c');
  t.equal(rel.dirs.unified, '/sys/fs/cgroup/unified/session/box/c');
  t.equal(rel.dirs['name=systemd'], '/sys/fs/cgroup/systemd/x/box/c');
  const abs = resolveCgroupPaths({ id: 'c', cgroupsPath: '/a/b/../c', mounts, own });
  t.equal(abs.path, '/a/c');
  t.equal(abs.dirs.pids, '/sys/fs/cgroup/with space/a/c');
  t.same(Object.keys(abs.dirs).sort(), ['cpu', 'cpuacct', 'memory', 'name=systemd', 'pids', 'unified']);
  const v2 = resolveCgroupPaths({ id: 'c', mounts: parseMountinfo('26 25 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw'), own });
  t.same(v2, { layout: 'v2', path: '/lxr/c', dirs: { unified: '/sys/fs/cgroup/lxr/c' } });
  t.throws(() => resolveCgroupPaths({ id: 'c', cgroupsPath: 'a/../../b', mounts, own }), CgroupError);
  t.throws(() => resolveCgroupPaths({ id: '..', mounts, own }), /container id "\.\." cannot name a cgroup/);
});

t.test("runc 1.1's cgroup v2 conversions", async (t) => {
  t.equal(sharesToWeight(0), 0, 'unset stays unset');
  t.equal(sharesToWeight(2), 1);
  t.equal(sharesToWeight(1024), 39, 'the default 1024 shares is weight 39 in runc 1.1 (not 100)');
  t.equal(sharesToWeight(262144), 10000);
  t.equal(cpuMaxValue(50000, 100000), '50000 100000');
  t.equal(cpuMaxValue(-1, 100000), 'max 100000');
  t.equal(cpuMaxValue(20000, 0), '20000');
  t.equal(swapToV2(200, 100), 100, 'memory.swap.max is memory+swap minus memory');
  t.equal(swapToV2(0, -1), -1, 'unlimited memory without swap value: unlimited swap');
  t.equal(swapToV2(-1, 100), -1);
  t.equal(swapToV2(100, 100), 0);
  t.throws(() => swapToV2(50, 100), /linux\.resources\.memory\.swap: 50 is below memory\.limit 100/);
  t.throws(() => swapToV2(50, 0), /without a memory\.limit/);
  t.equal(blkioWeightToIoWeight(10), 1);
  t.equal(blkioWeightToIoWeight(1000), 10000);
  t.equal(blkioWeightToIoWeight(500), 4950);
});

t.test('validateResources names the field', async (t) => {
  t.doesNotThrow(() => validateResources({ memory: { limit: -1, swap: -1 }, cpu: { cpus: '0-1,3', quota: -1 }, pids: { limit: -1 } }, 'v1'));
  t.throws(() => validateResources({ cpu: { shares: -2 } }, 'v1'), /^linux\.resources\.cpu\.shares: must be a non-negative integer, got -2$/);
  t.throws(() => validateResources({ cpu: { mems: '0;1' } }, 'v2'), /linux\.resources\.cpu\.mems/);
  t.throws(() => validateResources({ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }, 'v1'), /hugepageLimits\[0\]\.pageSize: "2M"/);
  t.throws(() => validateResources({ unified: { '../memory.max': '1' } }, 'v2'), /"\.\.\/memory\.max" is not a cgroup v2 interface file name/);
  t.throws(() => validateResources({ unified: { 'memory/max': '1' } }, 'v2'), /not a cgroup v2 interface file name/);
  t.throws(() => validateResources({ unified: { 'cgroup.procs': '1' } }, 'v2'), /managed by the runtime/);
  t.doesNotThrow(() => validateResources({ unified: { 'memory.high': '1000' } }, 'v2'));
});

t.test('v1 device rule strings and stats parsers', async (t) => {
  t.equal(deviceRuleString({ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }), 'c 1:3 rw');
  t.equal(deviceRuleString({ allow: true, type: 'b', major: -1, access: 'm' }), 'b *:* m');
  t.equal(deviceRuleString({ allow: false }), 'a');
  t.same(parseCpuList('0-2,5'), [0, 1, 2, 5]);
  t.same(parseBlkioEntries('8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n'), [
    { major: 8, op: 'Read', value: 4096 }, { major: 8, op: 'Write' }, { major: 8, op: 'Total', value: 4096 },
  ]);
});

t.test('device rules reduce with cgroup v1 semantics', async (t) => {
  t.same(reduceDeviceRules([]), { defaultAllow: false, exceptions: [] }, 'no rules: deny everything');
  t.same(reduceDeviceRules([{ allow: true }, { allow: false, type: 'c', major: 1, minor: 5, access: 'rwm' }]), {
    defaultAllow: true, exceptions: [{ type: 'c', major: 1, minor: 5, access: 7 }],
  });
  t.same(reduceDeviceRules([{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: false }]), { defaultAllow: false, exceptions: [] },
    'a later "a" rule drops the earlier exceptions');
  t.same(reduceDeviceRules([{ allow: false }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }]), {
    defaultAllow: false, exceptions: [{ type: 'c', major: 1, minor: 3, access: 2 | 1 }],
  }, 'a deny in deny-by-default mode takes access away from the matching exception');
});

t.test('deviceFilterProgram encodes bpf_insn records', async (t) => {
  const deny = deviceFilterProgram([]);
  // prologue (6) + "r0 = 0; exit"
  t.equal(deny.length, 8 * 8);
  t.same([...deny.subarray(6 * 8, 8 * 8)], [0xb4, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
  t.same([...deny.subarray(0, 8)], [0x61, 0x12, 0, 0, 0, 0, 0, 0], 'r2 = *(u32 *)(r1 + 0)');
  const one = deviceFilterProgram([{ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }]);
  // prologue 6 + [type, mov, and, jne, major, minor, mov r0, exit] 8 + default 2
  t.equal(one.length / 8, 16);
  const insn = (i: number): { code: number; regs: number; off: number; imm: number } =>
    ({ code: one[i * 8]!, regs: one[i * 8 + 1]!, off: one.readInt16LE(i * 8 + 2), imm: one.readInt32LE(i * 8 + 4) });
  t.same(insn(6), { code: 0x55, regs: 2, off: 7, imm: 2 }, 'if type != char skip the 7 remaining instructions of the block');
  t.same(insn(8), { code: 0x54, regs: 1, off: 0, imm: 1 }, 'access bits outside "rw" (mknod) make it no match');
  t.same(insn(10), { code: 0x55, regs: 4, off: 3, imm: 1 }, 'major 1');
  t.same(insn(11), { code: 0x55, regs: 5, off: 2, imm: 3 }, 'minor 3');
  t.same(insn(12), { code: 0xb4, regs: 0, off: 0, imm: 1 }, 'allow');
});

t.test('pids.limit and the default device rules the runtime adds', async (t) => {
  const { pidsMaxValue } = await import('../cgroups/values.js');
  t.same([pidsMaxValue(-1), pidsMaxValue(-5), pidsMaxValue(0), pidsMaxValue(7)], ['max', 'max', '0', '7'], '0 is a limit (runtime-spec v1.3.0), negative is none');
  const { withDefaultDevices } = await import('../container/cgroup-link.js');
  const none = withDefaultDevices(undefined, undefined);
  t.ok(none.devices!.length > 0, 'no resources at all still gives device rules');
  t.ok(none.devices!.every((d) => d.allow), 'only allow rules: the library starts from deny-all');
  t.ok(none.devices!.some((d) => d.type === 'c' && d.major === 1 && d.minor === 3), '/dev/null is among them');
  t.notOk(none.devices!.some((d) => d.type === 'c' && d.major === 1 && d.minor === 12), 'c 1:12 is not');
  const own = withDefaultDevices({ memory: { limit: 1 << 20 }, devices: [{ allow: true, type: 'b', major: 8, minor: 0, access: 'r' }] }, [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }]);
  t.same(own.memory, { limit: 1 << 20 }, 'other fields kept');
  t.same(own.devices![0], { allow: true, type: 'b', major: 8, minor: 0, access: 'r' }, "the spec's rules first");
  t.same(own.devices!.at(-1), { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }, 'linux.devices allowed last');
  // a node with a rule of its own keeps it (docker's --device /dev/x:r): no rwm added after it
  const ruled = withDefaultDevices({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 237, access: 'r' }] }, [{ path: '/dev/lc', type: 'c', major: 10, minor: 237 }]);
  t.same(ruled.devices!.filter((d) => d.major === 10 && d.minor === 237), [{ allow: true, type: 'c', major: 10, minor: 237, access: 'r' }], 'the r rule is the only one for 10:237');
});
