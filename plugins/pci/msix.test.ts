import { expect } from 'chai';
import fc from 'fast-check';
import { RecordingInterrupts } from '../../core/testing/recording-interrupts.js';
import { PciConfigSpace } from './config/space.js';
import { MsixTable, MsixControl } from './msix.js';

const header = { vendorId: 0x1af4, deviceId: 0x1041, classCode: 0x020000 };

function setup(vectors = 3) {
  const space = new PciConfigSpace({ ...header, bars: [{ index: 1, kind: 'mmio32', size: 0x1000n }] });
  const msix = new MsixTable(space, { vectors, tableBar: 1, tableOffset: 0, pbaBar: 1, pbaOffset: 0x800 });
  const irq = new RecordingInterrupts();
  const group = irq.msiGroup({ owner: 'nic', count: vectors });
  msix.connect(group);
  const w32 = (offset: number, v: number): void => {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    msix.writeTable(BigInt(offset), d);
  };
  const r32 = (offset: number): number => {
    const d = new Uint8Array(4);
    msix.readTable(BigInt(offset), d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  const pba = (): number => {
    const d = new Uint8Array(8);
    msix.readPba(0n, d);
    return d[0];
  };
  const control = (v: number): void => space.write(msix.cap.offset + 2, 2, v);
  return { space, msix, irq, group, w32, r32, pba, control };
}

describe('pci MSI-X table', () => {
  it('lays out the capability with table size, BIR and offsets; vectors start masked', () => {
    const { space, msix, r32 } = setup(3);
    const at = msix.cap.offset;
    expect(space.read(at, 4)).to.equal(0x0002_0011);
    expect(space.read(at + 4, 4)).to.equal(0x0000_0001);
    expect(space.read(at + 8, 4)).to.equal(0x0000_0801);
    expect(r32(12)).to.equal(1);
    expect(msix.tableRegion).to.include({ bar: 1, offset: 0n, size: 48n });
    expect(msix.pbaRegion).to.include({ bar: 1, offset: 0x800n, size: 8n });
    // Table size is read only; enable and function mask are the writable bits.
    space.write(at + 2, 2, 0xffff);
    expect(space.read(at + 2, 2)).to.equal(0xc002);
  });

  it('delivers a vector only while enabled, function unmasked and entry unmasked; pending bits wait', () => {
    const { msix, irq, w32, pba, control } = setup();
    w32(16, 0xfee0_0000);
    w32(20, 0);
    w32(24, 0x41);
    w32(28, 0); // entry 1 unmasked, MSI-X still disabled
    msix.trigger(1);
    expect(irq.msis).to.have.length(0);
    expect(pba()).to.equal(0b010);
    control(MsixControl.ENABLE | MsixControl.FUNCTION_MASK);
    expect(irq.msis).to.have.length(0);
    control(MsixControl.ENABLE);
    expect(irq.msis).to.deep.equal([{ address: 0xfee0_0000n, data: 0x41 }]);
    expect(pba()).to.equal(0);
    w32(28, 1); // mask the entry
    msix.trigger(1);
    expect(pba()).to.equal(0b010);
    w32(24, 0x42); // a new message while masked
    w32(28, 0);
    expect(irq.msis.at(-1)).to.deep.equal({ address: 0xfee0_0000n, data: 0x42 });
    control(0);
    msix.trigger(1);
    expect(irq.msis).to.have.length(2);
    expect(msix.trigger(3)).to.equal(false);
  });

  it('keeps reserved bits at 0, the PBA read only, and ignores accesses past the table', () => {
    const { msix, w32, r32, pba } = setup();
    w32(0, 0xffff_ffff);
    w32(12, 0xffff_fffe);
    expect(r32(0)).to.equal(0xffff_fffc);
    expect(r32(12)).to.equal(0);
    msix.pbaRegion.handler.write(0n, Uint8Array.of(0xff));
    expect(pba()).to.equal(0);
    w32(48, 0x1234); // past 3 entries
    expect(r32(48)).to.equal(0);
    const wide = new Uint8Array(8).fill(0xaa);
    msix.writeTable(16n, wide); // an 8-byte write of address low + high
    expect(msix.message(1).address).to.equal(0xaaaa_aaaa_aaaa_aaa8n);
  });

  it('survives garbage: any table write of any width keeps the VMM running and the state consistent', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.integer({ min: -8, max: 64 }),
            bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
            control: fc.integer({ min: 0, max: 0xffff }),
          }),
          { maxLength: 40 },
        ),
        (ops) => {
          const { msix, group, control } = setup(3);
          for (const op of ops) {
            msix.writeTable(BigInt(op.offset), op.bytes);
            if (op.control & 1) control(op.control);
            msix.trigger(op.control % 3);
          }
          for (let i = 0; i < 3; i++) {
            expect(group.vector(i).masked).to.equal(!msix.deliverable(i));
            if (msix.deliverable(i)) expect(group.vector(i).message).to.deep.equal(msix.message(i));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses layouts that do not fit', () => {
    const space = new PciConfigSpace({ ...header, bars: [{ index: 0, kind: 'mmio32', size: 0x100n }] });
    const make = (o: Partial<ConstructorParameters<typeof MsixTable>[1]>) => () =>
      new MsixTable(space, { vectors: 4, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x80, ...o });
    expect(make({ vectors: 0 })).to.throw(/1..2048/);
    expect(make({ tableOffset: 4 })).to.throw(/aligned/);
    expect(make({ pbaOffset: 0x20 })).to.throw(/overlap/);
    expect(make({ vectors: 16, pbaOffset: 0x100 })).to.throw(/does not fit/);
    expect(make({ tableBar: 2 })).to.throw(/does not fit/);
  });
});
