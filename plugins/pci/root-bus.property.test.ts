import { expect } from 'chai';
import fc from 'fast-check';
import { PciReg } from './config/registers.js';
import { setup, testFunction } from './test-fixtures.js';

/** One guest access: configuration (either mechanism), raw port 0xCF8..0xCFF, or memory inside A's BAR 0. */
const op = fc.oneof(
  fc.record({
    kind: fc.constant('ecam' as const),
    // Device 0 (host bridge), 1 (A, the target), 3 (absent); any function; any offset of the 4 KiB.
    dev: fc.constantFrom(0, 1, 1, 1, 3),
    fn: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 7 })),
    offset: fc.integer({ min: 0, max: 0xfff }),
    size: fc.constantFrom(1, 2, 4, 8),
    write: fc.boolean(),
    value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  }),
  fc.record({
    kind: fc.constant('cf8' as const),
    dev: fc.constantFrom(0, 1, 1, 1, 3),
    offset: fc.integer({ min: 0, max: 0xff }),
    size: fc.constantFrom(1, 2, 4),
    write: fc.boolean(),
    value: fc.bigInt({ min: 0n, max: 0xffff_ffffn }),
  }),
  fc.record({
    kind: fc.constant('port' as const),
    port: fc.integer({ min: 0xcf8, max: 0xcff }),
    size: fc.constantFrom(1, 2, 4),
    write: fc.boolean(),
    value: fc.bigInt({ min: 0n, max: 0xffff_ffffn }),
  }),
  fc.record({
    kind: fc.constant('bar' as const),
    offset: fc.integer({ min: 0, max: 0xfff }),
    size: fc.constantFrom(1, 2, 4, 8),
    write: fc.boolean(),
    value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  }),
);

describe('pci root bus under random guest accesses (property)', () => {
  it('any configuration, port and BAR access of any width and offset: no throw, B keeps working, windows consistent', () => {
    let cases = 0;
    // One bus for every case (a fresh one per case costs more than the accesses): B is the bystander plugged
    // in once; A, the target, is plugged in anew for each case and unplugged after it.
    const { guest, root, irq, bus } = setup();
    const b = testFunction('b', 0x1041);
    root.add(b.fn, { slot: 2 });
    guest.cf8Write(2, 0, PciReg.COMMAND, 2, 0x7);
    const bBar0 = root.barBase(2, 0)!;
    guest.write('mmio', bBar0, 4, 0xb0b0_b0b0);
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 6 }), (ops) => {
        cases++;
        const a = testFunction('a');
        const attachment = root.add(a.fn, { slot: 1 });
        const group = irq.msiGroup({ owner: 'a', count: 2 });
        a.msix.connect(group);
        guest.cf8Write(1, 0, PciReg.COMMAND, 2, 0x7); // CONFIG_ADDRESS names A from here on
        for (const o of ops) {
          if (o.kind === 'ecam') {
            const addr = root.ecam!.start + BigInt((o.dev << 15) | (o.fn << 12) | o.offset);
            if (o.write) guest.write('mmio', addr, o.size, o.value);
            else guest.read('mmio', addr, o.size);
          } else if (o.kind === 'cf8') {
            if (o.write) guest.cf8Write(o.dev, 0, o.offset, o.size, Number(o.value));
            else guest.cf8Read(o.dev, 0, o.offset, o.size);
          } else if (o.kind === 'port') {
            let v = o.value;
            // CONFIG_ADDRESS may name anything but B (device 2): B is the bystander that must keep working.
            if (o.port === 0xcf8 && o.size === 4 && ((v >> 11n) & 0x1fn) === 2n) v ^= 3n << 11n;
            if (o.write) guest.write('pio', o.port, o.size, v);
            else guest.read('pio', o.port, o.size);
          } else {
            const base = root.barBase(1, 0);
            if (base === undefined) continue;
            if (o.write) guest.write('mmio', base + BigInt(o.offset), o.size, o.value);
            else guest.read('mmio', base + BigInt(o.offset), o.size);
          }
        }
        // B (never written to) still answers where it was: configuration and its BAR.
        expect(guest.cf8Read(2, 0, 0, 4)).to.equal(0x1041_1af4);
        expect(guest.ecamRead(2, 0, 0, 4)).to.equal(0x1041_1af4);
        expect(root.barBase(2, 0)).to.equal(bBar0);
        expect(guest.read('mmio', bBar0, 4)).to.equal(0xb0b0_b0b0n);
        expect(guest.cf8Read(0, 0, 0, 4)).to.equal(0x0d57_8086);
        // A's read-only identity survived; each of its mapped windows is held in Resources by A.
        expect(guest.ecamRead(1, 0, 0, 4)).to.equal(0x1042_1af4);
        for (const i of [0, 2, 4]) {
          const base = root.barBase(1, i);
          if (base === undefined) continue;
          const space = i === 4 ? (['pio'] as const) : (['mmio32', 'mmio64'] as const);
          const held = space.flatMap((s) => irq.resources.allocations(s)).find((x) => x.owner === `pci:a:bar${i}`);
          expect(held, `BAR ${i} at 0x${base.toString(16)} is held`).to.not.equal(undefined);
          expect(base >= held!.start && base < held!.start + held!.size).to.equal(true);
          expect(bus.find(i === 4 ? 'pio' : 'mmio', base)?.name).to.equal(`pci:a:bar${i}`);
        }
        // A's MSI-X vectors are unmasked in the group exactly when the table and capability let them deliver.
        for (let v = 0; v < 2; v++) expect(group.vector(v).masked).to.equal(!a.msix.deliverable(v));
        attachment.dispose();
        group.dispose();
        expect(irq.resources.allocations('mmio32').filter((x) => x.owner.startsWith('pci:a'))).to.deep.equal([]);
      }),
      { numRuns: 10_000 },
    );
    expect(cases).to.be.at.least(10_000);
    root.dispose();
    expect(irq.resources.allocations('mmio32').filter((x) => x.owner.startsWith('pci'))).to.deep.equal([]);
  });
});
