import { expect } from 'chai';
import fc from 'fast-check';
import { X86_REG_NAMES, type X86Segment, type X86Sregs } from '../../x86/hypervisor/types.js';
import * as codec from './codec.js';
import { offsetOf } from '../abi/layout.js';
import { kvm_regs, kvm_sregs } from '../abi/structs.js';
import { mpStateName, mpStateNumber } from '../abi/mp-state.js';

const view = (b: Buffer): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u8 = fc.integer({ min: 0, max: 255 });
const segment = fc.record({
  base: u64,
  limit: fc.integer({ min: 0, max: 0xffffffff }),
  selector: fc.integer({ min: 0, max: 0xffff }),
  type: u8,
  present: u8,
  dpl: u8,
  db: u8,
  s: u8,
  l: u8,
  g: u8,
  avl: u8,
  unusable: u8,
}) as fc.Arbitrary<X86Segment>;

describe('kvm codec', () => {
  it('round-trips kvm_regs, with every register at its C offset', () => {
    fc.assert(
      fc.property(fc.array(u64, { minLength: 18, maxLength: 18 }), (vals) => {
        const names = X86_REG_NAMES;
        const regs = Object.fromEntries(names.map((n, i) => [n, vals[i]])) as Record<(typeof names)[number], bigint>;
        const b = codec.encodeRegs(regs);
        for (const n of names) expect(b.readBigUInt64LE(offsetOf(kvm_regs, n)), n).to.equal(regs[n]);
        expect(codec.decodeRegs(view(b))).to.deep.equal(regs);
      }),
    );
  });

  it('round-trips kvm_sregs', () => {
    const sregs = fc.record({
      cs: segment,
      ds: segment,
      es: segment,
      fs: segment,
      gs: segment,
      ss: segment,
      tr: segment,
      ldt: segment,
      gdt: fc.record({ base: u64, limit: fc.integer({ min: 0, max: 0xffff }) }),
      idt: fc.record({ base: u64, limit: fc.integer({ min: 0, max: 0xffff }) }),
      cr0: u64,
      cr2: u64,
      cr3: u64,
      cr4: u64,
      cr8: u64,
      efer: u64,
      apicBase: u64,
      interruptBitmap: fc.tuple(u64, u64, u64, u64),
    }) as fc.Arbitrary<X86Sregs>;
    fc.assert(
      fc.property(sregs, (s) => {
        const b = codec.encodeSregs(s);
        expect(b.length).to.equal(kvm_sregs.size);
        for (const [field, v] of [
          ['cr0', s.cr0],
          ['cr2', s.cr2],
          ['cr3', s.cr3],
          ['cr4', s.cr4],
          ['cr8', s.cr8],
          ['efer', s.efer],
          ['apic_base', s.apicBase],
          ['cs.base', s.cs.base],
          ['tr.base', s.tr.base],
          ['gdt.base', s.gdt.base],
        ] as const) {
          expect(b.readBigUInt64LE(offsetOf(kvm_sregs, field)), field).to.equal(v);
        }
        expect(codec.decodeSregs(view(b))).to.deep.equal(s);
      }),
      { numRuns: 50 },
    );
  });

  it('round-trips kvm_fpu and refuses oversized register files', () => {
    const f = {
      fpr: Uint8Array.from({ length: 128 }, (_, i) => i),
      fcw: 0x37f,
      fsw: 1,
      ftwx: 0xff,
      lastOpcode: 7,
      lastIp: 1n << 60n,
      lastDp: 3n,
      xmm: Uint8Array.from({ length: 256 }, (_, i) => 255 - (i & 255)),
      mxcsr: 0x1f80,
    };
    expect(codec.decodeFpu(view(codec.encodeFpu(f)))).to.deep.equal(f);
    expect(() => codec.encodeFpu({ ...f, xmm: new Uint8Array(257) })).to.throw(RangeError);
  });

  it('round-trips cpuid2 and msrs, and never reads past a short buffer', () => {
    const entries = [
      { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 1, ecx: 2, edx: 3 },
      { function: 7, index: 1, flags: 1, eax: 0xffffffff, ebx: 0, ecx: 0, edx: 9 },
    ];
    const b = codec.encodeCpuid2(entries);
    expect(codec.decodeCpuid2(view(b))).to.deep.equal(entries);
    b.writeUInt32LE(1000, 0); // a lying nent
    expect(codec.decodeCpuid2(view(b))).to.have.length(2);
    const msrs = [
      { index: 0x10, data: 5n },
      { index: 0xc0000080, data: 1n << 63n },
    ];
    expect(codec.decodeMsrs(view(codec.encodeMsrs(msrs)), 2)).to.deep.equal(msrs);
  });

  it('maps mp states both ways', () => {
    for (const s of ['runnable', 'uninitialized', 'init-received', 'halted', 'sipi-received', 'stopped'] as const) {
      expect(mpStateName(mpStateNumber(s))).to.equal(s);
    }
    expect(mpStateName(99)).to.equal(undefined);
  });
});
