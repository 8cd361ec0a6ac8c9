import { expect } from 'chai';
import { PciConfigSpace } from './space.js';
import { PciCapId, PciCommand, PciReg, PciStatus } from './registers.js';

const header = { vendorId: 0x1af4, deviceId: 0x1042, classCode: 0x018000, revision: 1, interruptPin: 1 };

describe('pci config space', () => {
  it('answers the header as declared, and keeps read-only registers against writes', () => {
    const s = new PciConfigSpace({ ...header, subsystemVendorId: 0x1af4, subsystemId: 2 });
    expect(s.read(0, 4)).to.equal(0x1042_1af4);
    expect(s.read(PciReg.REVISION_ID, 4)).to.equal(0x0180_0001);
    expect(s.read(PciReg.SUBSYSTEM_VENDOR_ID, 4)).to.equal(0x0002_1af4);
    expect(s.read(PciReg.INTERRUPT_PIN, 1)).to.equal(1);
    s.write(0, 4, 0xffff_ffff);
    s.write(PciReg.REVISION_ID, 4, 0);
    s.write(PciReg.INTERRUPT_PIN, 1, 3);
    expect(s.read(0, 4)).to.equal(0x1042_1af4);
    expect(s.read(PciReg.REVISION_ID, 4)).to.equal(0x0180_0001);
    expect(s.read(PciReg.INTERRUPT_PIN, 1)).to.equal(1);
    // Interrupt Line is firmware's scratch register: read-write.
    s.write(PciReg.INTERRUPT_LINE, 1, 11);
    expect(s.read(PciReg.INTERRUPT_LINE, 1)).to.equal(11);
  });

  it('lets the guest set only the command bits a function has', () => {
    const s = new PciConfigSpace(header);
    s.write(PciReg.COMMAND, 2, 0xffff);
    expect(s.read(PciReg.COMMAND, 2)).to.equal(0x0547);
    expect([s.ioEnabled, s.memoryEnabled, s.busMaster, s.intxDisabled]).to.deep.equal([true, true, true, true]);
    s.write(PciReg.COMMAND, 1, 0);
    expect(s.command).to.equal(PciCommand.INTX_DISABLE | PciCommand.SERR);
  });

  it('clears RW1C status bits written as 1 and keeps read-only status bits', () => {
    const s = new PciConfigSpace(header);
    s.set(PciReg.STATUS, 2, 0x8000 | 0x0100 | PciStatus.INTERRUPT);
    s.write(PciReg.STATUS, 2, 0x8000 | PciStatus.INTERRUPT);
    expect(s.read(PciReg.STATUS, 2)).to.equal(0x0100 | PciStatus.INTERRUPT);
    // A 4-byte write at the command register reaches the status register too.
    s.write(PciReg.COMMAND, 4, 0xffff_0000);
    expect(s.read(PciReg.STATUS, 2)).to.equal(PciStatus.INTERRUPT);
  });

  it('reads all ones and ignores writes for accesses that are unaligned, of odd size or outside the space', () => {
    const s = new PciConfigSpace(header);
    expect(s.read(1, 2)).to.equal(0xffff);
    expect(s.read(2, 4)).to.equal(0xffff_ffff);
    expect(s.read(256, 1)).to.equal(0xff);
    expect(s.read(0, 3)).to.equal(0xffff_ffff);
    expect(s.read(-4, 4)).to.equal(0xffff_ffff);
    s.write(PciReg.COMMAND + 1, 2, 0xffff);
    s.write(PciReg.COMMAND, 8 as 4, 0xffff);
    expect(s.command).to.equal(0);
  });

  it('links capabilities from 0x40 and sets the status capability bit', () => {
    const s = new PciConfigSpace(header);
    expect(s.read(PciReg.STATUS, 2) & PciStatus.CAPABILITIES_LIST).to.equal(0);
    const a = s.addCapability(PciCapId.VENDOR_SPECIFIC, 16);
    a.define(2, 1, 16);
    a.define(4, 4, 0x1234, { writable: 0xff });
    const b = s.addCapability(PciCapId.VENDOR_SPECIFIC, 5);
    const c = s.addCapability(PciCapId.MSIX, 12);
    expect(s.read(PciReg.STATUS, 2) & PciStatus.CAPABILITIES_LIST).to.equal(PciStatus.CAPABILITIES_LIST);
    expect(s.read(PciReg.CAPABILITIES_POINTER, 1)).to.equal(0x40);
    expect([a.offset, b.offset, c.offset]).to.deep.equal([0x40, 0x50, 0x58]);
    expect(s.capabilities()).to.deep.equal([
      { id: 9, offset: 0x40 },
      { id: 9, offset: 0x50 },
      { id: 0x11, offset: 0x58 },
    ]);
    s.write(0x44, 4, 0xffff_ffff);
    expect(s.read(0x44, 4)).to.equal(0x12ff);
    s.write(0x41, 1, 0);
    expect(s.read(0x41, 1)).to.equal(0x50);
    expect(() => s.addCapability(9, 0xa0)).to.throw(/no room/);
    expect(() => a.define(14, 4, 0)).to.throw(/outside/);
    expect(() => s.define(0x44, 1, 0)).to.throw(/overlaps/);
  });

  it('runs watches around guest accesses that overlap them', () => {
    const s = new PciConfigSpace(header);
    const cap = s.addCapability(PciCapId.VENDOR_SPECIFIC, 8);
    cap.define(4, 4, 0, { writable: 0xffff_ffff });
    const seen: string[] = [];
    const w = cap.watch({
      onRead: (o, n) => {
        seen.push(`r${o}:${n}`);
        cap.set(4, 4, 0xabcd);
      },
      onWrite: (o, n) => seen.push(`w${o}:${n}:${cap.get(4, 4)}`),
    });
    expect(s.read(0x44, 4)).to.equal(0xabcd);
    s.write(0x46, 2, 0x1234);
    s.read(0x3c, 4);
    w.dispose();
    s.read(0x44, 4);
    expect(seen).to.deep.equal(['r68:4', `w70:2:${0x1234abcd}`]);
  });

  it('refuses header values that do not fit their fields', () => {
    expect(() => new PciConfigSpace({ ...header, vendorId: 0x10000 })).to.throw(/vendor id/);
    expect(() => new PciConfigSpace({ ...header, interruptPin: 5 })).to.throw(/pin 5/);
    expect(() => new PciConfigSpace({ ...header, classCode: -1 })).to.throw(/class code/);
  });
  it('places a capability at a fixed offset outside its own list (a passed-through device keeps its list)', () => {
    const s = new PciConfigSpace(header);
    const cap = s.addCapability(0x11, 12, 0xb0);
    cap.define(4, 4, 0x2000);
    expect(cap.offset).to.equal(0xb0);
    expect(s.get(0xb0, 2)).to.equal(0x0011);
    expect(s.capabilities()).to.deep.equal([]); // not linked: no list, no status bit
    expect(s.addCapability(0x05, 10).offset).to.equal(0x40); // the space's own list is unaffected
    expect(() => s.addCapability(0x09, 8, 0xb4)).to.throw(/overlaps/);
    expect(() => s.addCapability(0x09, 8, 0x3c)).to.throw(/not a dword in 0x40..0xff/);
    expect(() => s.addCapability(0x09, 8, 0xfa)).to.throw(/not a dword in 0x40..0xff/);
  });
});
