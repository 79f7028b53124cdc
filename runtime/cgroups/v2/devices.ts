// Device access control on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program
// (Documentation/admin-guide/cgroup-v2.rst "Device controller"), assembled here.
//
// The rules are first reduced with cgroup v1's semantics, so a config means the same on
// both versions (runc does this too, with its "devices emulator"): a type "a" rule resets
// the default (allow or deny everything) and drops all exceptions; any other rule either
// adds an exception to the default or, when it agrees with the default, takes access
// away from an exception with the same type/major/minor. The program checks the
// exceptions, then returns the default. With no rules at all nothing is allowed (deny by
// default, like runc).
import type { DeviceCgroup } from '../../../oci-spec/types.js';
import { BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE, BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, reduceDeviceRules } from '../device-rules.js';

// eBPF instruction encoding: struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm; }
const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;
const LDX_MEM_W = 0x61;
const ALU32_AND_K = 0x54;
const ALU32_RSH_K = 0x74;
const ALU32_MOV_X = 0xbc;
const ALU32_MOV_K = 0xb4;
const JMP_JEQ_K = 0x15;
const JMP_JNE_K = 0x55;
const JMP_EXIT = 0x95;

interface Insn { code: number; dst: number; src: number; off: number; imm: number }
const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });

/** The program as instructions, 8 bytes each, ready for BPF_PROG_LOAD. */
export function deviceFilterProgram(rules: DeviceCgroup[]): Buffer {
  const { defaultAllow, exceptions } = reduceDeviceRules(rules);
  const verdict = defaultAllow ? 0 : 1; // exceptions say the opposite of the default
  const prog: Insn[] = [
    // struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
    insn(LDX_MEM_W, R2, R1, 0, 0),
    insn(ALU32_AND_K, R2, 0, 0, 0xffff), // r2 = device type
    insn(LDX_MEM_W, R3, R1, 0, 0),
    insn(ALU32_RSH_K, R3, 0, 0, 16), // r3 = requested access
    insn(LDX_MEM_W, R4, R1, 4, 0), // r4 = major
    insn(LDX_MEM_W, R5, R1, 8, 0), // r5 = minor
  ];
  for (const e of exceptions) {
    // Each test jumps past the rest of this block when the request does not match.
    const tests: ((skip: number) => Insn)[] = [];
    tests.push((skip) => insn(JMP_JNE_K, R2, 0, skip, e.type === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    const all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
    const accessTests: Insn[] = [];
    if (e.access !== all) {
      accessTests.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
      // An allowing exception must cover all requested access; a denying one matches any overlap (as v1).
      accessTests.push(insn(ALU32_AND_K, R1, 0, 0, verdict ? ~e.access & all : e.access));
    }
    const block: (Insn | ((skip: number) => Insn))[] = [...tests];
    if (accessTests.length) {
      block.push(accessTests[0]!, accessTests[1]!);
      block.push((skip) => insn(verdict ? JMP_JNE_K : JMP_JEQ_K, R1, 0, skip, 0));
    }
    if (e.major !== -1) block.push((skip) => insn(JMP_JNE_K, R4, 0, skip, e.major));
    if (e.minor !== -1) block.push((skip) => insn(JMP_JNE_K, R5, 0, skip, e.minor));
    block.push(insn(ALU32_MOV_K, R0, 0, 0, verdict), insn(JMP_EXIT, 0, 0, 0, 0));
    block.forEach((b, i) => prog.push(typeof b === 'function' ? b(block.length - i - 1) : b));
  }
  prog.push(insn(ALU32_MOV_K, R0, 0, 0, defaultAllow ? 1 : 0), insn(JMP_EXIT, 0, 0, 0, 0));

  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((p, i) => {
    buf.writeUInt8(p.code, i * 8);
    buf.writeUInt8(((p.src & 0xf) << 4) | (p.dst & 0xf), i * 8 + 1);
    buf.writeInt16LE(p.off, i * 8 + 2);
    buf.writeInt32LE(p.imm | 0, i * 8 + 4);
  });
  return buf;
}
