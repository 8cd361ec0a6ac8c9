import { expect } from 'chai';
import fc from 'fast-check';
import { PciReg } from '../pci/config/registers.js';
import { plugFake } from './test-fixtures.js';

const MSIX_CAP = 0xb0;

describe('vfio: hostile guest writes (property)', () => {
  it('random configuration writes never throw, keep the identity, BAR alignment and the emulated MSI-X control off the device', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            size: fc.constantFrom<1 | 2 | 4>(1, 2, 4),
            offset: fc.integer({ min: 0, max: 255 }),
            value: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(0xffff_ffff, 0, 0x8000, 0xc000)),
          }),
          { maxLength: 60 },
        ),
        (writes) => {
          const { device, fn } = plugFake();
          for (const w of writes) {
            device.writeConfig(w.offset, w.size, w.value); // unaligned ones too: the device must shrug
            device.readConfig(w.offset, w.size);
          }
          expect(device.readConfig(PciReg.VENDOR_ID, 4)).to.equal(0x0010_1b36);
          expect(device.readConfig(PciReg.HEADER_TYPE, 1)).to.equal(0);
          expect(device.readConfig(PciReg.BAR0, 4) & 0x3ff0).to.equal(0); // 16 KiB aligned whatever was written
          expect(device.readConfig(PciReg.EXPANSION_ROM, 4)).to.equal(0);
          // the device never sees BAR, ROM or MSI-X capability-body writes (vfio-pci would virtualise them anyway)
          for (const cw of fn.configWrites)
            for (let i = 0; i < cw.data.length; i++) {
              const at = cw.offset + i;
              expect(at >= 0x10 && at < 0x28, `BAR byte 0x${at.toString(16)} reached the device`).to.equal(false);
              expect(at >= MSIX_CAP + 2 && at < MSIX_CAP + 12, `MSI-X byte 0x${at.toString(16)}`).to.equal(false);
            }
          // the VFIO interrupt mode matches the guest's enable bit
          const enabled = (device.readConfig(MSIX_CAP + 2, 2) & 0x8000) !== 0;
          expect(device.irqs.mode).to.equal(enabled ? 'msix' : 'intx');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random MSI-X table, PBA and BAR writes never throw; every message reaching the VM is one the guest programmed', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.integer({ min: 0x1ff0, max: 0x3fff }),
            size: fc.constantFrom(1, 2, 4, 8),
            value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
            fire: fc.integer({ min: -1, max: 5 }),
          }),
          { maxLength: 80 },
        ),
        (ops) => {
          const { bus, device, fire, interrupts, fn } = plugFake();
          bus.enable(device);
          bus.writeConfig(device, MSIX_CAP + 2, 2, 0x8000);
          const seen = new Set<string>();
          const key = (m: { address: bigint; data: number }) => `${m.address}:${m.data}`;
          for (const op of ops) {
            const offset = BigInt(Math.min(op.offset, 0x4000 - op.size));
            bus.writeBar(device, 0, offset, op.size, op.value & ((1n << BigInt(8 * op.size)) - 1n));
            bus.readBar(device, 0, offset, op.size);
            for (let i = 0; i < 4; i++) seen.add(key(device.config.msix!.message(i)));
            if (op.fire >= 0 && op.fire < 4) fire(2, op.fire);
          }
          for (const m of interrupts.rec.msis) {
            expect(seen.has(key(m)), `message ${key(m)} was never in the table`).to.equal(true);
            expect(m.address & 3n).to.equal(0n); // reserved low address bits never leave the table
          }
          // trapped writes outside the table and PBA went to the device, inside never
          expect(
            fn.bars
              .get(0)!
              .subarray(0x2000, 0x2040)
              .every((b) => b === 0),
          ).to.equal(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accesses past a BAR region read all ones and write nothing (logged once, counted)', () => {
    const { device, fn } = plugFake({ bars: [{ index: 2, kind: 'io', size: 8 }], msix: false });
    expect(device.bars).to.deep.equal([{ index: 2, kind: 'io', size: 8n, prefetchable: false }]);
    const d = new Uint8Array(4);
    device.readBar(2, 6n, d);
    expect([...d]).to.deep.equal([0xff, 0xff, 0xff, 0xff]);
    device.writeBar(2, 7n, new Uint8Array([1, 2]));
    expect([...fn.bars.get(2)!]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(device.refusals.total).to.equal(2);
  });
});
