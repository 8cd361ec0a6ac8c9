import { expect } from 'chai';
import { GuestAddress } from '../../../core/address.js';
import { X86Layout } from '../layout.js';
import { testGuestMemory } from '../../../core/testing/test-memory.js';
import { X86BootError } from '../errors.js';
import { MP, buildMpTable, writeMpTable } from './mptable.js';

const sum = (b: Uint8Array) => b.reduce((s, x) => (s + x) & 0xff, 0);

/** Parses the tables the way Linux's mpparse does: checksums, then the entries. */
function parse(mem: ReturnType<typeof testGuestMemory>) {
  const base = X86Layout.EBDA_START;
  const fp = mem.read(GuestAddress.of(base), 16);
  expect(String.fromCharCode(...fp.subarray(0, 4))).to.equal('_MP_');
  expect(sum(fp)).to.equal(0, 'floating pointer checksum');
  const cfg = BigInt(new DataView(fp.buffer).getUint32(4, true));
  const hdr = mem.read(GuestAddress.of(cfg), 44);
  const hv = new DataView(hdr.buffer);
  expect(String.fromCharCode(...hdr.subarray(0, 4))).to.equal('PCMP');
  const len = hv.getUint16(4, true);
  const table = mem.read(GuestAddress.of(cfg), len);
  expect(sum(table)).to.equal(0, 'config table checksum');
  expect(hv.getUint32(36, true)).to.equal(Number(X86Layout.LAPIC));
  const count = hv.getUint16(34, true);
  const entries: { type: number; bytes: Uint8Array }[] = [];
  let p = 44;
  for (let i = 0; i < count; i++) {
    const type = table[p];
    const size = type === MP.ENTRY_PROCESSOR ? 20 : 8;
    entries.push({ type, bytes: table.subarray(p, p + size) });
    p += size;
  }
  expect(p).to.equal(len, 'entries fill the base table exactly');
  return entries;
}

describe('x86 MP table', () => {
  for (const vcpus of [1, 2, 8, 64]) {
    it(`describes ${vcpus} vCPU(s), the ISA bus, the IOAPIC and IRQs 0..23 with valid checksums`, () => {
      const mem = testGuestMemory(2 << 20);
      writeMpTable(mem, buildMpTable({ vcpus }));
      const entries = parse(mem);
      const cpus = entries.filter((e) => e.type === MP.ENTRY_PROCESSOR);
      expect(cpus.map((c) => c.bytes[1])).to.deep.equal(Array.from({ length: vcpus }, (_, i) => i));
      expect(cpus.map((c) => c.bytes[3])).to.deep.equal(Array.from({ length: vcpus }, (_, i) => (i === 0 ? 3 : 1)));
      const bus = entries.filter((e) => e.type === MP.ENTRY_BUS);
      expect(bus).to.have.length(1);
      expect(String.fromCharCode(...bus[0].bytes.subarray(2, 8))).to.equal('ISA   ');
      const ioapic = entries.filter((e) => e.type === MP.ENTRY_IOAPIC);
      expect(ioapic).to.have.length(1);
      expect(ioapic[0].bytes[1]).to.equal(vcpus, 'IOAPIC id after the CPUs');
      expect(new DataView(ioapic[0].bytes.buffer, ioapic[0].bytes.byteOffset).getUint32(4, true)).to.equal(
        Number(X86Layout.IOAPIC),
      );
      const ints = entries.filter((e) => e.type === MP.ENTRY_IO_INT);
      expect(ints.map((e) => [e.bytes[5], e.bytes[6], e.bytes[7]])).to.deep.equal(
        Array.from({ length: 24 }, (_, i) => [i, vcpus, i]),
      );
      const lints = entries.filter((e) => e.type === MP.ENTRY_LOCAL_INT);
      expect(lints.map((e) => [e.bytes[1], e.bytes[6], e.bytes[7]])).to.deep.equal([
        [MP.INT_TYPE_EXTINT, 0, 0],
        [MP.INT_TYPE_NMI, 0xff, 1],
      ]);
    });
  }

  it('refuses vCPU counts xAPIC ids cannot number', () => {
    expect(() => buildMpTable({ vcpus: 255 }))
      .to.throw(X86BootError)
      .with.property('kind', 'TooManyVcpus');
    expect(() => buildMpTable({ vcpus: 0 })).to.throw(X86BootError);
  });
});
