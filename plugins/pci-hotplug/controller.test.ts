import { expect } from 'chai';
import type { PciDevice } from '../../core/pci/index.js';
import { silentLogger } from '../../core/testing/index.js';
import { TestPciBus } from '../pci/testing.js';
import { HotplugController } from './controller.js';
import { PciHotplugError } from './errors.js';
import { HotplugRegister } from './registers.js';
import { emptyPciFunction } from './testing.js';

const fn = (id: string): PciDevice => emptyPciFunction(id);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('pci-hotplug controller', () => {
  let bus: TestPciBus;
  let ctl: HotplugController;
  let notes: number;
  beforeEach(() => {
    bus = new TestPciBus();
    notes = 0;
    ctl = new HotplugController({
      attachments: () => bus.attachments(),
      notify: () => notes++,
      logger: silentLogger(),
    });
    bus.onChange((c) => ctl.changed(c));
  });
  const read = (reg: number, size = 4): number => {
    const d = new Uint8Array(size);
    ctl.bus.read(BigInt(reg), d);
    return size === 4 ? new DataView(d.buffer).getUint32(0, true) : d[0];
  };
  const write = (reg: number, v: number, size = 4): void => {
    const d = new Uint8Array(size);
    if (size === 4) new DataView(d.buffer).setUint32(0, v >>> 0, true);
    else d[0] = v;
    ctl.bus.write(BigInt(reg), d);
  };

  it('announces functions plugged while the guest runs (PCIU, cleared by its read), not those at boot', async () => {
    bus.add(fn('boot'), { slot: 2 });
    await tick();
    expect([notes, read(HotplugRegister.PCIU)]).to.deep.equal([0, 0]);
    bus.running = true;
    bus.add(fn('hot1'), { slot: 3 });
    bus.add(fn('hot2'), { slot: 31 });
    expect(notes).to.equal(0, 'after the current task, once');
    await tick();
    expect(notes).to.equal(1);
    expect(read(HotplugRegister.PCIU)).to.equal(((1 << 3) | (2 ** 31)) >>> 0);
    expect([read(HotplugRegister.PCIU), read(HotplugRegister.PCID)]).to.deep.equal([0, 0]);
  });

  it("a removal waits for the guest's eject (PCID, then B0EJ); the removal itself needs no second notice", async () => {
    bus.running = true;
    const a = bus.add(fn('disk'), { slot: 5 });
    await tick();
    read(HotplugRegister.PCIU);
    let ejected = false;
    const asked = ctl.requestEject(a, 60_000).then(() => (ejected = true));
    expect(ctl.requestEject(a, 60_000)).to.equal(ctl.requestEject(a, 60_000), 'one request per slot');
    await tick();
    expect([notes, read(HotplugRegister.PCID), ejected]).to.deep.equal([2, 1 << 5, false]);
    write(HotplugRegister.B0EJ, 1 << 5);
    await asked;
    a.dispose();
    await tick();
    expect([notes, read(HotplugRegister.PCID), ctl.refused]).to.deep.equal([2, 0, 0]);
  });

  it('a guest that does not eject in time: a one-line EjectTimeout, the function stays', async () => {
    bus.running = true;
    const a = bus.add(fn('nic'), { slot: 7 });
    const err = await ctl.requestEject(a, 1).then(
      () => expect.fail('resolved'),
      (e: unknown) => e as PciHotplugError,
    );
    expect(err).to.be.instanceOf(PciHotplugError).with.property('kind', 'EjectTimeout');
    expect(err.message).to.equal('the guest did not eject 0000:00:07.0 (nic) within 1 ms');
    expect(bus.attachments()).to.have.length(1);
  });

  it('hostile guests: empty-slot ejects, bad segments, odd accesses are refused and counted; nothing moves', async () => {
    bus.running = true;
    const a = bus.add(fn('disk'), { slot: 4 });
    write(HotplugRegister.B0EJ, 0xffff_ffef); // every slot but 4: all empty (slot 0 is the bridge)
    expect(ctl.refused).to.equal(31);
    write(HotplugRegister.B0EJ, 1 << 4); // present, but nobody asked
    expect([ctl.unaskedEjects, bus.attachments().length]).to.deep.equal([1, 1]);
    write(HotplugRegister.PSEG, 3);
    expect(read(HotplugRegister.PSEG)).to.equal(3);
    const asked = ctl.requestEject(a, 60_000);
    let done = false;
    void asked.then(() => (done = true));
    await tick();
    expect(read(HotplugRegister.PCID)).to.equal(0, 'segment 3 has no slots');
    write(HotplugRegister.B0EJ, 1 << 4);
    await tick();
    expect(done).to.equal(false, 'an eject on another segment does not count');
    write(HotplugRegister.PSEG, 0);
    const before = ctl.refused;
    expect(read(HotplugRegister.PCIU, 1)).to.equal(0);
    write(HotplugRegister.B0EJ, 0x10, 1);
    write(0x2, 0x10);
    ctl.bus.read(0x40n, new Uint8Array(4));
    expect(ctl.refused - before).to.equal(4);
    expect(done).to.equal(false);
    write(HotplugRegister.B0EJ, 1 << 4);
    await asked;
  });

  it('an eject storm on present and empty slots logs a few rate-limited lines, not one per eject', () => {
    const warnings: string[] = [];
    const logger = { ...silentLogger(), warn: (_o: unknown, m?: string) => void warnings.push(m ?? '') };
    ctl = new HotplugController({ attachments: () => bus.attachments(), notify: () => notes++, logger });
    bus.running = true;
    bus.add(fn('a'), { slot: 1 });
    bus.add(fn('b'), { slot: 2 });
    for (let i = 0; i < 1000; i++) write(HotplugRegister.B0EJ, i & 1 ? 0xffff_ffff : 0b110);
    expect([ctl.unaskedEjects, ctl.refused, bus.attachments().length]).to.deep.equal([2000, 500 * 30, 2]);
    expect(warnings.length, warnings.slice(0, 3).join('\n')).to.be.at.most(40);
  });

  it('a function lost without an eject (surprise removal) is announced through PCID', async () => {
    bus.running = true;
    const a = bus.add(fn('gone'), { slot: 9 });
    await tick();
    read(HotplugRegister.PCIU);
    a.dispose();
    await tick();
    expect([notes, read(HotplugRegister.PCID)]).to.deep.equal([2, 1 << 9]);
  });

  it('stop() fails pending removals and refuses new ones', async () => {
    bus.running = true;
    const a = bus.add(fn('d'), { slot: 1 });
    const pending = ctl.requestEject(a, 60_000);
    ctl.stop();
    expect(await pending.catch((e: Error) => e.message)).to.match(/VM stopped before the guest ejected d/);
    expect(await ctl.requestEject(a, 1).catch((e: PciHotplugError) => e.kind)).to.equal('Stopped');
  });
});
