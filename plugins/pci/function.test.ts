import { expect } from 'chai';
import { RecordingInterrupts } from '../../core/testing/recording-interrupts.js';
import { PciReg } from './config/registers.js';
import { TestPciBus } from './testing.js';
import { testFunction } from './test-fixtures.js';

const makeFunction = (id = 'fn') => testFunction(id);

describe('pci function and the test bus', () => {
  it('places BARs as firmware does, maps them when the guest enables decode, and follows moves', () => {
    const irq = new RecordingInterrupts();
    const bus = new TestPciBus({ interrupts: irq });
    const { fn } = makeFunction();
    const mapped: [number, bigint | undefined][] = [];
    fn.onBarMapped((i, a) => mapped.push([i, a]));
    const att = bus.add(fn);
    expect(att.address).to.include({ segment: 0, bus: 0, device: 1, function: 0 });
    expect(bus.readConfig(fn, PciReg.BAR0, 4)).to.equal(0xe000_0000);
    expect(bus.readConfig(fn, PciReg.BAR0 + 8, 4)).to.equal(0x0000_000c);
    expect(bus.readConfig(fn, PciReg.BAR0 + 12, 4)).to.equal(0x80);
    expect(bus.readConfig(fn, PciReg.BAR0 + 16, 4)).to.equal(0xc001);
    expect(bus.readConfig(fn, PciReg.INTERRUPT_LINE, 1)).to.equal(fn.context!.intx!.gsi);
    expect(mapped).to.deep.equal([]);
    bus.enable(fn);
    expect(mapped).to.deep.equal([
      [0, 0xe000_0000n],
      [2, 0x80_0000_0000n],
      [4, 0xc000n],
    ]);
    expect(bus.access('mmio', 0xe000_0100n, 4)).to.deep.include({ device: fn, index: 0, offset: 0x100n });
    expect(bus.access('pio', 0xc01fn, 1)).to.deep.include({ index: 4, offset: 0x1fn });
    expect(bus.access('pio', 0xc01fn, 2)).to.equal(undefined);
    // The guest moves BAR 0 (decode stays on: the window follows at once).
    bus.writeConfig(fn, PciReg.BAR0, 4, 0xe010_0000);
    expect(mapped.at(-1)).to.deep.equal([0, 0xe010_0000n]);
    expect(fn.barMappedAt(0)).to.equal(0xe010_0000n);
    // Memory decode off: both memory BARs unmapped, I/O stays.
    bus.writeConfig(fn, PciReg.COMMAND, 2, 1);
    expect(mapped.slice(-2)).to.deep.equal([
      [0, undefined],
      [2, undefined],
    ]);
    expect(bus.mapped(fn, 4)).to.equal(0xc000n);
    att.dispose();
    expect(mapped.at(-1)).to.deep.equal([4, undefined]);
    expect(bus.attachments()).to.deep.equal([]);
    expect(bus.changes.map((c) => c.kind)).to.deep.equal(['added', 'removed']);
    expect([...irq.lines().values()]).to.not.include('fn');
  });

  it('serves BAR regions and reads 0 elsewhere in the BAR', () => {
    const bus = new TestPciBus();
    const { fn } = makeFunction();
    bus.add(fn, { slot: 5 });
    expect(() => bus.add(makeFunction('other').fn, { slot: 5 })).to.throw(/slot 5 is taken/);
    bus.writeBar(fn, 0, 0n, 4, 0xdead_beef);
    expect(bus.readBar(fn, 0, 0n, 4)).to.equal(0xdead_beefn);
    expect(bus.readBar(fn, 0, 0x200n, 4)).to.equal(0n);
    expect(bus.readBar(fn, 0, 0x80cn, 4)).to.equal(1n); // MSI-X entry 0's vector control: masked
    expect(bus.readBar(fn, 0, 7n, 2)).to.equal(0n); // straddles the scratch register's end: not served
    expect(() => bus.readBar(fn, 0, 0xffen, 4)).to.throw(/outside BAR 0/);
    expect(() => fn.addBarRegion(0, 4n, 4n, { read: () => undefined, write: () => undefined })).to.throw(/overlaps/);
  });

  it('drives INTx through the wired line, honouring the command register Interrupt Disable bit', () => {
    const irq = new RecordingInterrupts();
    const bus = new TestPciBus({ interrupts: irq });
    const { fn, config } = makeFunction();
    bus.add(fn);
    const gsi = fn.context!.intx!.gsi;
    fn.setIntx(true);
    expect(irq.level(gsi)).to.equal(true);
    expect(bus.readConfig(fn, PciReg.STATUS, 2) & 0x8).to.equal(0x8);
    bus.writeConfig(fn, PciReg.COMMAND, 2, config.command | 0x400);
    expect(irq.level(gsi)).to.equal(false);
    expect(bus.readConfig(fn, PciReg.STATUS, 2) & 0x8).to.equal(0x8); // status still says asserted
    bus.writeConfig(fn, PciReg.COMMAND, 2, 0);
    expect(irq.level(gsi)).to.equal(true);
    fn.setIntx(false);
    expect(irq.level(gsi)).to.equal(false);
    expect(bus.readConfig(fn, PciReg.STATUS, 2) & 0x8).to.equal(0);
  });

  it('delivers MSI-X written through the BAR once the function is connected to a vector group', () => {
    const irq = new RecordingInterrupts();
    const bus = new TestPciBus({ interrupts: irq });
    const { fn, msix } = makeFunction();
    bus.add(fn);
    msix.connect(irq.msiGroup({ owner: fn.id, count: 2, devid: fn.context!.requesterId }));
    bus.writeBar(fn, 0, 0x810n, 8, 0xfee0_0000n);
    bus.writeBar(fn, 0, 0x818n, 4, 0x23);
    bus.writeBar(fn, 0, 0x81cn, 4, 0);
    bus.writeConfig(fn, msix.cap.offset + 2, 2, 0x8000);
    msix.trigger(1);
    expect(irq.msis).to.deep.equal([{ address: 0xfee0_0000n, data: 0x23 }]);
    msix.trigger(0);
    expect(bus.readBar(fn, 0, 0xc00n, 8)).to.equal(1n);
  });
});
