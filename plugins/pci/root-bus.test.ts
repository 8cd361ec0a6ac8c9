import { expect } from 'chai';
import { PciReg } from './config/registers.js';
import { setup, testFunction } from './test-fixtures.js';

describe('pci root bus', () => {
  it('shows the host bridge at 00:00.0 through both mechanisms and all ones where nothing is', () => {
    const { guest, root, irq } = setup();
    expect(guest.cf8Read(0, 0, 0, 4)).to.equal(0x0d57_8086);
    expect(guest.ecamRead(0, 0, 0, 4)).to.equal(0x0d57_8086);
    expect(guest.cf8Read(0, 0, PciReg.CLASS_CODE + 1, 2)).to.equal(0x0600);
    expect(guest.cf8Read(0, 0, PciReg.HEADER_TYPE, 1)).to.equal(0);
    expect(guest.cf8Read(3, 0, 0, 4)).to.equal(0xffff_ffff);
    expect(guest.cf8Read(0, 1, 0, 2)).to.equal(0xffff);
    expect(guest.cf8Read(0, 0, 0, 4, 1)).to.equal(0xffff_ffff);
    expect(guest.ecamRead(0, 0, 0, 4, 0)).to.equal(0x0d57_8086);
    // CONFIG_ADDRESS reads back; with the enable bit clear the data port reads all ones.
    guest.write('pio', 0xcf8, 4, 0x8000_0000);
    expect(guest.read('pio', 0xcf8, 4)).to.equal(0x8000_0000n);
    guest.write('pio', 0xcf8, 4, 0);
    expect(guest.read('pio', 0xcfc, 4)).to.equal(0xffff_ffffn);
    // Linux's type 1 probe: a byte to 0xCFB does not disturb CONFIG_ADDRESS.
    guest.write('pio', 0xcf8, 4, 0x8000_0000);
    guest.write('pio', 0xcfb, 1, 1);
    expect(guest.read('pio', 0xcf8, 4)).to.equal(0x8000_0000n);
    // The ports and the ECAM window are held in Resources; four INTx lines are taken.
    const owners = (s: 'pio' | 'mmio32' | 'irq') => irq.resources.allocations(s).map((a) => a.owner);
    expect(owners('pio')).to.include('pci-config');
    expect(owners('mmio32')).to.include('pci-ecam');
    expect(root.ecam!.size).to.equal(1n << 20n);
    expect(root.intx.gsis).to.deep.equal([5, 6, 10, 11]);
  });

  it('places BARs like firmware, maps them when the guest enables decode, follows moves, unmaps on decode off', () => {
    const { guest, root, irq, bus } = setup();
    const { fn } = testFunction('blk');
    const mapped: string[] = [];
    fn.onBarMapped((i, a) => mapped.push(`${i}@${a === undefined ? '-' : a.toString(16)}`));
    const att = root.add(fn);
    expect(att.address.device).to.equal(1);
    const bar0 = BigInt((guest.cf8Read(1, 0, PciReg.BAR0, 4) & ~0xf) >>> 0);
    const bar2 =
      BigInt((guest.ecamRead(1, 0, PciReg.BAR0 + 8, 4) & ~0xf) >>> 0) | (BigInt(guest.ecamRead(1, 0, 0x1c, 4)) << 32n);
    const bar4 = BigInt((guest.cf8Read(1, 0, PciReg.BAR0 + 16, 4) & ~3) >>> 0);
    const allocs = irq.resources.allocations('mmio32').filter((a) => a.owner.startsWith('pci:blk'));
    expect(allocs.map((a) => a.start)).to.deep.equal([bar0]);
    expect(bar2 >= irq.resources.window('mmio64').alloc.start).to.equal(true);
    expect(bar4 >= 0x1000n && bar4 % 0x20n === 0n).to.equal(true);
    expect(bus.find('mmio', bar0)).to.equal(undefined); // decode off
    guest.cf8Write(1, 0, PciReg.COMMAND, 2, 0x7);
    expect(mapped).to.deep.equal([`0@${bar0.toString(16)}`, `2@${bar2.toString(16)}`, `4@${bar4.toString(16)}`]);
    guest.write('mmio', bar0, 4, 0x1234_5678);
    expect(guest.read('mmio', bar0, 4)).to.equal(0x1234_5678n);
    expect(guest.read('pio', bar4 + 3n, 1)).to.equal(0x43n);
    expect(guest.read('mmio', bar0 + 0x80cn, 4)).to.equal(1n); // MSI-X vector control
    // Move BAR 0 with decode on: the window follows, Resources too.
    const to = 0xe000_0000n;
    guest.ecamWrite(1, 0, PciReg.BAR0, 4, Number(to));
    expect(mapped.at(-1)).to.equal(`0@${to.toString(16)}`);
    expect(guest.read('mmio', to, 4)).to.equal(0x1234_5678n);
    expect(bus.find('mmio', bar0)).to.equal(undefined);
    expect(irq.resources.allocations('mmio32').find((a) => a.owner === 'pci:blk:bar0')?.start).to.equal(to);
    expect(root.barBase(1, 0)).to.equal(to);
    // Memory decode off: memory BARs unmapped, I/O stays.
    guest.cf8Write(1, 0, PciReg.COMMAND, 2, 0x1);
    expect(mapped.slice(-2)).to.deep.equal(['0@-', '2@-']);
    expect(guest.read('mmio', to, 4)).to.equal(0xffff_ffffn);
    expect(guest.read('pio', bar4, 1)).to.equal(0x40n);
  });

  it('maps the BARs a restored configuration space holds when the function says it changed (no guest write)', () => {
    const { guest, root, bus } = setup();
    const { fn, config } = testFunction('blk');
    const mapped: string[] = [];
    fn.onBarMapped((i, a) => mapped.push(`${i}@${a === undefined ? '-' : a.toString(16)}`));
    root.add(fn);
    // a saved state loads: the guest had moved BAR 0 and turned memory and I/O decode on
    const to = 0xe000_0000n;
    config.set(PciReg.BAR0, 4, Number(to));
    config.set(PciReg.COMMAND, 2, 0x7);
    expect(bus.find('mmio', to), 'nothing moves before the bus is told').to.equal(undefined);
    fn.context!.configChanged!();
    expect(root.barBase(1, 0)).to.equal(to);
    expect(mapped[0]).to.equal(`0@${to.toString(16)}`);
    guest.write('mmio', to, 4, 0x1234_5678);
    expect(guest.read('mmio', to, 4)).to.equal(0x1234_5678n);
  });

  it('answers the sizing probe through the bus without mapping anything, and restores', () => {
    const { guest, root, bus } = setup();
    const { fn } = testFunction('net');
    root.add(fn);
    guest.cf8Write(1, 0, PciReg.COMMAND, 2, 0x3);
    const before = bus.registrations('mmio').length;
    // As Linux does it (decode on for once): ones, read, restore.
    const saved = guest.cf8Read(1, 0, PciReg.BAR0, 4);
    guest.cf8Write(1, 0, PciReg.BAR0, 4, 0xffff_ffff);
    expect(guest.cf8Read(1, 0, PciReg.BAR0, 4)).to.equal(0xffff_f000);
    expect(bus.registrations('mmio').length).to.equal(before - 1); // all-ones: not a window
    guest.cf8Write(1, 0, PciReg.BAR0, 4, saved);
    expect(bus.registrations('mmio').length).to.equal(before);
    expect(root.barBase(1, 0)).to.equal(BigInt(saved));
  });

  it('refuses BARs moved over RAM, over another BAR or over ECAM (logged once each), the others keep working', () => {
    const { guest, root, logger } = setup();
    const a = testFunction('a');
    const b = testFunction('b', 0x1041);
    root.add(a.fn);
    root.add(b.fn);
    for (const dev of [1, 2]) guest.cf8Write(dev, 0, PciReg.COMMAND, 2, 0x7);
    const aBar0 = BigInt((guest.cf8Read(1, 0, PciReg.BAR0, 4) & ~0xf) >>> 0);
    const bBar0 = BigInt((guest.cf8Read(2, 0, PciReg.BAR0, 4) & ~0xf) >>> 0);
    guest.write('mmio', bBar0, 4, 0xb0b0);
    // Over RAM (below the 32-bit hole).
    guest.cf8Write(1, 0, PciReg.BAR0, 4, 0x0010_0000);
    expect(root.barBase(1, 0)).to.equal(undefined);
    expect(logger.warnings.at(-1)).to.match(/pci:a:bar0.*unmapped at 0x100000/);
    // Over b's BAR 0.
    guest.cf8Write(1, 0, PciReg.BAR0, 4, Number(bBar0));
    expect(root.barBase(1, 0)).to.equal(undefined);
    expect(logger.warnings.at(-1)).to.match(/unmapped at 0x[0-9a-f]+: .*pci:b:bar0/);
    // Over the ECAM window.
    guest.cf8Write(1, 0, PciReg.BAR0, 4, Number(root.ecam!.start));
    expect(root.barBase(1, 0)).to.equal(undefined);
    // A 64-bit BAR over the IOAPIC/LAPIC region.
    guest.cf8Write(1, 0, 0x18, 4, 0xfee0_0000);
    guest.cf8Write(1, 0, 0x1c, 4, 0);
    expect(root.barBase(1, 2)).to.equal(undefined);
    expect(guest.read('mmio', bBar0, 4)).to.equal(0xb0b0n);
    expect(guest.ecamRead(0, 0, 0, 4)).to.equal(0x0d57_8086);
    // Back to its own place: accepted again.
    guest.cf8Write(1, 0, PciReg.BAR0, 4, Number(aBar0));
    expect(root.barBase(1, 0)).to.equal(aBar0);
    expect(root.refusals.total).to.equal(4); // RAM, b, ECAM, the 64-bit BAR (its low half alone was a free place)
  });

  it('refuses configuration accesses outside a function (ECAM past 256 bytes, unaligned), rate limited', () => {
    const { guest, root, logger } = setup();
    root.add(testFunction('x').fn);
    expect(guest.ecamRead(1, 0, 0x100, 4)).to.equal(0xffff_ffff);
    guest.ecamWrite(1, 0, 0xffc, 4, 0);
    expect(guest.ecamRead(1, 0, 0x1, 2)).to.equal(0xffff);
    guest.write('pio', 0xcf8, 4, 0x8000_0800); // device 1
    expect(guest.read('pio', 0xcfd, 2)).to.equal(0xffffn);
    for (let i = 0; i < 100; i++) guest.ecamRead(1, 0, 0x200, 4);
    expect(root.refusals.total).to.equal(104);
    expect(logger.warnings.length).to.be.lessThan(12);
    expect(guest.ecamRead(1, 0, 0, 4)).to.equal(0x1042_1af4);
  });

  it('routes INTx by slot and pin to the shared lines, writes the line register, ORs shared functions', () => {
    const { guest, root, irq } = setup();
    const f1 = testFunction('f1');
    const f5 = testFunction('f5');
    root.add(f1.fn, { slot: 1 });
    root.add(f5.fn, { slot: 5 }); // (5 + 0) % 4 = 1, as slot 1: shared line
    const gsi = root.intx.gsis[1];
    expect(f1.fn.context!.intx!.gsi).to.equal(gsi);
    expect(f5.fn.context!.intx!.gsi).to.equal(gsi);
    expect(guest.cf8Read(5, 0, PciReg.INTERRUPT_LINE, 1)).to.equal(gsi);
    f1.fn.setIntx(true);
    f5.fn.setIntx(true);
    f1.fn.setIntx(false);
    expect(irq.level(gsi)).to.equal(true);
    f5.fn.setIntx(false);
    expect(irq.level(gsi)).to.equal(false);
    expect(root.intx.lineOf(2, 1)).to.equal(2);
  });

  it('unplugs: windows and places freed, slot reusable, listeners told (running after start)', () => {
    const { guest, root, irq, setRunning } = setup();
    const changes: string[] = [];
    root.onChange((c) => changes.push(`${c.kind}:${c.attachment.device.id}:${c.running}`));
    const a = testFunction('a');
    const att = root.add(a.fn, { slot: 3 });
    guest.cf8Write(3, 0, PciReg.COMMAND, 2, 0x7);
    const bar0 = BigInt((guest.cf8Read(3, 0, PciReg.BAR0, 4) & ~0xf) >>> 0);
    expect(() => root.add(testFunction('b').fn, { slot: 3 })).to.throw(/slot 3 is taken by a/);
    expect(() => root.add(a.fn)).to.throw(/already on the PCI bus/);
    expect(() => root.add(testFunction('c').fn, { slot: 0 })).to.throw(/slot 0 is not 1..31/);
    setRunning(true);
    att.dispose();
    att.dispose();
    expect(a.fn.barMappedAt(0)).to.equal(undefined);
    expect(guest.cf8Read(3, 0, 0, 4)).to.equal(0xffff_ffff);
    expect(guest.read('mmio', bar0, 4)).to.equal(0xffff_ffffn);
    expect(irq.resources.allocations('mmio32').filter((x) => x.owner.startsWith('pci:a'))).to.deep.equal([]);
    const again = testFunction('a2');
    root.add(again.fn, { slot: 3 });
    expect((guest.cf8Read(3, 0, PciReg.BAR0, 4) & ~0xf) >>> 0).to.equal(Number(bar0));
    expect(changes).to.deep.equal(['added:a:false', 'removed:a:true', 'added:a2:true']);
    expect(root.attachments().map((x) => x.address.device)).to.deep.equal([3]);
    root.dispose();
    expect(irq.resources.allocations('pio').map((x) => x.owner)).to.not.include('pci-config');
  });
});
