import { expect } from 'chai';
import { PciReg } from '../pci/config/registers.js';
import { MSIX_ENTRY_SIZE } from '../pci/msix.js';
import { VfioPciIrq } from './abi.js';
import { plugFake } from './test-fixtures.js';

const MSIX_CAP = 0xb0;

describe('vfio: a passed-through function on the bus (test double)', () => {
  it('shows the physical identity, a single-function header, no ROM and the physical capability list', () => {
    const { bus, device } = plugFake();
    expect(bus.readConfig(device, PciReg.VENDOR_ID, 4)).to.equal(0x0010_1b36);
    expect(bus.readConfig(device, PciReg.CLASS_CODE - 1, 4) >>> 8).to.equal(0x010802);
    expect(bus.readConfig(device, PciReg.HEADER_TYPE, 1)).to.equal(0); // the device says 0x80
    expect(bus.readConfig(device, PciReg.EXPANSION_ROM, 4)).to.equal(0);
    expect(bus.readConfig(device, PciReg.CAPABILITIES_POINTER, 1)).to.equal(0x40);
    expect(bus.readConfig(device, 0x40, 2)).to.equal(0x7001); // PM, next PCIe: passed through
    expect(bus.readConfig(device, 0x42, 2)).to.equal(0x0003);
    expect(bus.readConfig(device, MSIX_CAP, 4)).to.equal(0x0003_0011); // MSI-X, 4 vectors, last in the list
  });

  it('answers BAR sizing from the VFIO region and places the BAR in the shadow, never on the device', () => {
    const { bus, device, fn } = plugFake();
    expect(device.bars).to.deep.equal([{ index: 0, kind: 'mmio64', size: 0x4000n, prefetchable: false }]);
    bus.writeConfig(device, PciReg.BAR0, 4, 0xffff_ffff);
    expect(bus.readConfig(device, PciReg.BAR0, 4)).to.equal(0xffff_c004);
    bus.writeConfig(device, PciReg.BAR0, 4, 0xfe00_0000);
    expect(bus.readConfig(device, PciReg.BAR0, 4)).to.equal(0xfe00_0004);
    expect(fn.configWrites.filter((w) => w.offset >= 0x10 && w.offset < 0x28)).to.have.length(0);
  });

  it('passes command writes to the device as well as the shadow (decode, bus master)', () => {
    const { bus, device, fn } = plugFake();
    bus.enable(device);
    expect(bus.readConfig(device, PciReg.COMMAND, 2) & 7).to.equal(7);
    expect(fn.config[PciReg.COMMAND] & 7).to.equal(7);
  });

  it('maps the mmappable BAR parts into the guest except the MSI-X table and PBA pages, and follows moves', () => {
    const { bus, device, slotCalls, fn } = plugFake();
    expect(device.directParts(0).map((p) => [p.offset, p.size])).to.deep.equal([[0n, 0x2000n]]);
    expect(fn.mappings).to.have.length(1);
    bus.enable(device);
    const base = bus.mapped(device, 0)!;
    const slots = () => slotCalls('setMemorySlot') as { guestAddress: bigint; size: bigint }[];
    expect(slots().at(-1)).to.include({ guestAddress: base, size: 0x2000n });
    bus.writeConfig(device, PciReg.COMMAND, 2, 0); // decode off: the slot goes
    expect(slotCalls('removeMemorySlot')).to.have.length(1);
    expect(device.directParts(0)[0].inGuest).to.equal(false);
    bus.writeConfig(device, PciReg.BAR0, 4, 0xd000_0000);
    bus.writeConfig(device, PciReg.BAR0 + 4, 4, 0);
    bus.enable(device);
    expect(slots().at(-1)).to.include({ guestAddress: 0xd000_0000n, size: 0x2000n });
  });

  it('traps everything without memory slots; trapped accesses reach the device registers', () => {
    const { bus, device, fn } = plugFake({}, false);
    expect(device.directParts(0)).to.deep.equal([]);
    bus.writeBar(device, 0, 0x14n, 4, 0x0046_0001); // an NVMe CC write
    expect([...fn.bars.get(0)!.subarray(0x14, 0x18)]).to.deep.equal([1, 0, 0x46, 0]);
    fn.bars.get(0)!.set([0x01, 0x00, 0x00, 0x00], 0x1c);
    expect(bus.readBar(device, 0, 0x1cn, 4)).to.equal(1n);
  });

  it('starts INTx through an eventfd, asserts the line and unmasks it in VFIO at the guest EOI', () => {
    const { fn, fire, interrupts } = plugFake();
    const intx = fn.irqCalls.find((c) => c.index === VfioPciIrq.INTX && c.action === 'trigger');
    expect(intx?.data.kind).to.equal('eventfd');
    expect(fire(VfioPciIrq.INTX)).to.equal(true);
    const line = interrupts.lines[0];
    expect(line.levels.at(-1)).to.equal(true);
    expect(fire(VfioPciIrq.INTX)).to.equal(false); // VFIO masked it: no second signal before EOI
    line.eoi();
    expect(fn.irqCalls.at(-1)).to.include({ index: VfioPciIrq.INTX, action: 'unmask' });
    expect(fire(VfioPciIrq.INTX)).to.equal(true);
  });

  it('switches VFIO to MSI-X when the guest enables it, delivers unmasked vectors and holds masked ones as pending', () => {
    const { bus, device, fn, fire, interrupts } = plugFake();
    bus.enable(device);
    const entry = (i: number, address: number, data: number, masked: boolean) => {
      bus.writeBar(device, 0, BigInt(0x2000 + i * MSIX_ENTRY_SIZE), 4, address);
      bus.writeBar(device, 0, BigInt(0x2000 + i * MSIX_ENTRY_SIZE + 4), 4, 0);
      bus.writeBar(device, 0, BigInt(0x2000 + i * MSIX_ENTRY_SIZE + 8), 4, data);
      bus.writeBar(device, 0, BigInt(0x2000 + i * MSIX_ENTRY_SIZE + 12), 4, masked ? 1 : 0);
    };
    entry(0, 0xfee0_0000, 0x41, false);
    entry(1, 0xfee0_1000, 0x42, true);
    bus.writeConfig(device, MSIX_CAP + 2, 2, 0x8000);
    expect(fn.triggers.has(VfioPciIrq.INTX)).to.equal(false);
    expect(fn.triggers.get(VfioPciIrq.MSIX)).to.have.length(4);
    expect(fn.configWrites.some((w) => w.offset <= MSIX_CAP + 2 && w.offset + w.data.length > MSIX_CAP + 2)).to.equal(
      false,
    );
    expect(device.irqs.mode).to.equal('msix');
    fire(VfioPciIrq.MSIX, 0);
    expect(interrupts.rec.msis).to.deep.equal([{ address: 0xfee0_0000n, data: 0x41 }]);
    fire(VfioPciIrq.MSIX, 1);
    expect(interrupts.rec.msis).to.have.length(1);
    expect(bus.readBar(device, 0, 0x3000n, 8) & 2n).to.equal(2n); // PBA: vector 1 pending
    bus.writeBar(device, 0, BigInt(0x2000 + MSIX_ENTRY_SIZE + 12), 4, 0);
    expect(interrupts.rec.msis.at(-1)).to.deep.equal({ address: 0xfee0_1000n, data: 0x42 });
    bus.writeConfig(device, MSIX_CAP + 2, 2, 0); // off again: back to INTx
    expect(fn.triggers.has(VfioPciIrq.MSIX)).to.equal(false);
    expect(device.irqs.mode).to.equal('intx');
  });

  it('switches VFIO to MSI with the granted vector count', () => {
    const { bus, device, fn } = plugFake({ msix: false, msi: { vectors: 4, perVectorMask: true } });
    expect(device.config.msi?.vectors).to.equal(4);
    bus.writeConfig(device, 0x54, 4, 0xfee0_0000);
    bus.writeConfig(device, 0x5c, 2, 0x30);
    bus.writeConfig(device, 0x52, 2, 0x21); // enable, 4 granted
    expect(fn.triggers.get(VfioPciIrq.MSI)).to.have.length(4);
    bus.writeConfig(device, 0x52, 2, 0x11); // 2 granted
    expect(fn.triggers.get(VfioPciIrq.MSI)).to.have.length(2);
    expect(device.irqs.mode).to.equal('msi');
  });

  it('resets the function when built and when unplugged, and releases interrupts and mappings', () => {
    const { fn, attachment, bus, device } = plugFake();
    expect(fn.resets).to.equal(1);
    bus.enable(device);
    bus.writeConfig(device, MSIX_CAP + 2, 2, 0x8000);
    attachment.dispose();
    expect(fn.resets).to.equal(2);
    expect(fn.triggers.size).to.equal(0);
    expect(fn.mappings.every((m) => m.unmapped)).to.equal(true);
  });
});
