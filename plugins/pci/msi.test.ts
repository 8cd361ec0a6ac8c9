import { expect } from 'chai';
import { RecordingInterrupts } from '../../core/testing/recording-interrupts.js';
import { PciConfigSpace } from './config/space.js';
import { MsiCapability } from './msi.js';
import { RefusalLog } from './refusals.js';

const header = { vendorId: 0x1234, deviceId: 0x11, classCode: 0xff0000 };

describe('pci MSI capability', () => {
  function setup(opts = { vectors: 4 }) {
    const space = new PciConfigSpace(header);
    const msi = new MsiCapability(space, opts);
    const irq = new RecordingInterrupts();
    const group = irq.msiGroup({ owner: 'dev', count: msi.vectors });
    msi.connect(group);
    return { space, msi, irq, group, at: msi.cap.offset };
  }

  it('lays out the 64-bit, per-vector-masking capability and delivers granted vectors with their data', () => {
    const { space, msi, irq, at } = setup();
    expect(space.read(at, 4)).to.equal(0x0184_0005); // id 5, next 0, control: per-vector mask, 64-bit, MMC 2
    msi.trigger(0); // disabled: pending, not delivered
    expect(irq.msis).to.have.length(0);
    space.write(at + 4, 4, 0xfee0_1003); // bits 1:0 are 0
    space.write(at + 8, 4, 0);
    space.write(at + 12, 2, 0x4041); // low bits freed by a 4-vector grant
    space.write(at + 2, 2, 0x21); // enable, MME = 2 (4 vectors)
    expect(msi.enabledVectors).to.equal(4);
    expect(irq.msis).to.deep.equal([{ address: 0xfee0_1000n, data: 0x4040 }]); // the pending one, now
    msi.trigger(3);
    expect(irq.msis.at(-1)).to.deep.equal({ address: 0xfee0_1000n, data: 0x4043 });
  });

  it('holds masked vectors pending and shows them in the pending register until unmasked', () => {
    const { space, msi, irq, at } = setup();
    space.write(at + 4, 4, 0xfee0_0000);
    space.write(at + 12, 2, 0x30);
    space.write(at + 16, 4, 0b10); // mask vector 1
    space.write(at + 2, 2, 0x11); // enable, 2 vectors
    msi.trigger(1);
    expect(irq.msis).to.have.length(0);
    expect(space.read(at + 20, 4)).to.equal(0b10);
    space.write(at + 20, 4, 0); // read only
    expect(space.read(at + 20, 4)).to.equal(0b10);
    space.write(at + 16, 4, 0);
    expect(irq.msis).to.deep.equal([{ address: 0xfee0_0000n, data: 0x31 }]);
    expect(space.read(at + 20, 4)).to.equal(0);
    // A grant above what the function asks for is clamped to it; vectors beyond the grant stay masked.
    space.write(at + 2, 2, 0x71);
    expect(msi.enabledVectors).to.equal(4);
    space.write(at + 2, 2, 0x01);
    msi.trigger(2);
    expect(irq.msis).to.have.length(1);
  });

  it('offers the 32-bit layout without masking when asked', () => {
    const space = new PciConfigSpace(header);
    const msi = new MsiCapability(space, { vectors: 1, addr64: false, perVectorMask: false });
    expect(msi.cap.length).to.equal(10);
    expect(space.read(msi.cap.offset + 2, 2)).to.equal(0);
    expect(() => new MsiCapability(space, { vectors: 3 })).to.throw(/1, 2, 4/);
  });

  it('masks and logs a vector whose route the interrupt service refuses', () => {
    const { space, group, at } = setup();
    const log = new RefusalLog();
    const msi2 = new MsiCapability(new PciConfigSpace(header), { vectors: 1 }, log);
    const failing = {
      ...group,
      owner: 'dev',
      size: 4,
      vector: (i: number) => group.vector(i),
      update: () => {
        throw new Error('route refused');
      },
      mask: (i: number) => group.mask(i),
      unmask: (i: number) => group.unmask(i),
      trigger: (i: number) => group.trigger(i),
      pending: (i: number) => group.pending(i),
      dispose: () => group.dispose(),
    };
    msi2.connect(failing);
    msi2.cap.space.write(msi2.cap.offset + 2, 2, 1);
    expect(log.total).to.equal(1);
    expect(group.vector(0).masked).to.equal(true);
    expect(space.read(at, 1)).to.equal(5);
  });
});
