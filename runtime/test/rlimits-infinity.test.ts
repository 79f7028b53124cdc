// RLIM_INFINITY in config.json: 18446744073709551615 comes out of JSON.parse as 2^64 (a
// double); planRlimits must read it as unlimited, not as one past it.
import t from 'tap';
import { planRlimits } from '../linux/rlimits.js';

t.test('18446744073709551615 is unlimited', async (t) => {
  const rl = JSON.parse('[{"type":"RLIMIT_CORE","soft":18446744073709551615,"hard":18446744073709551615}]');
  const hard = (await import('../linux/rlimits.js')).currentHardLimits().RLIMIT_CORE;
  if (hard !== 0xffffffffffffffffn) {
    t.comment('this process cannot keep an unlimited core hard limit');
    return;
  }
  const [step] = planRlimits(rl);
  t.equal(step!.soft, 0xffffffffffffffffn);
  t.equal(step!.hard, 0xffffffffffffffffn);
});
