import { expect } from 'chai';
import type { MmioFastPath, MmioWriteMode } from '../../core/bus/fast-path.js';
import { EchoDevice, MockSplitQueue } from '../virtio/testing.js';
import { VirtioMmioTransport } from './device.js';
import { INT_CONFIG, INT_VRING, Reg } from './registers.js';
import { MmioDriver, mmioTestHost } from './testing.js';

/** Records what the transport publishes, and in which order against the interrupt line. */
class RecordingFastPath implements MmioFastPath {
  read = new Map<number, number | undefined>();
  write = new Map<number, MmioWriteMode>();
  log: string[] = [];
  setReadValue(offset: number, value: number | undefined): void {
    this.read.set(offset, value);
    this.log.push(`read ${offset}=${value}`);
  }
  setWriteMode(offset: number, mode: MmioWriteMode): void {
    this.write.set(offset, mode);
  }
}

function setup() {
  const t = mmioTestHost();
  const dev = new EchoDevice('echo0', t.events.loop, {});
  const att = t.host.attachVirtioDevice(dev);
  const transport = t.host.transports[0] as VirtioMmioTransport;
  const drv = t.driverAt(t.bus.registrations('mmio')[0].range.start.value);
  const q = new MockSplitQueue(t.memory, 16);
  const fp = new RecordingFastPath();
  const handle = transport.attachMmioFastPath(fp);
  return { ...t, dev, att, transport, drv, q, fp, handle };
}

describe('virtio-mmio transport: worker fast path publication', () => {
  it('publishes nothing before DRIVER_OK, then InterruptStatus; InterruptACK always reaches the device at once', () => {
    const { drv, q, fp } = setup();
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(undefined);
    expect(fp.write.get(Reg.InterruptACK)).to.equal('device');
    drv.init([q]);
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(0);
    // A queued (deferred) ACK could clear a bit raised after the guest read the status: lost interrupt.
    expect(fp.write.get(Reg.InterruptACK)).to.equal('device');
  });

  it('the published value tracks InterruptStatus through raise, ACK and reset', () => {
    const { drv, q, fp, att, transport } = setup();
    drv.init([q]);
    att.interrupt.signalUsedQueue(0);
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(INT_VRING);
    att.interrupt.signalConfigChange();
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(INT_VRING | INT_CONFIG);
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(drv.read32(Reg.InterruptStatus));
    drv.write32(Reg.InterruptACK, INT_VRING); // a queued ACK reaches the device like this, through the bus
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(INT_CONFIG);
    drv.write32(Reg.InterruptACK, INT_CONFIG);
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(0);
    att.interrupt.signalUsedQueue(0);
    transport.reset();
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(undefined);
    expect(fp.write.get(Reg.InterruptACK)).to.equal('device');
    expect(drv.read32(Reg.InterruptStatus)).to.equal(0);
  });

  it('publishes the new bit before it triggers the interrupt line', () => {
    const t = mmioTestHost();
    const dev = new EchoDevice('echo1', t.events.loop, {});
    const fp = new RecordingFastPath();
    const atTrigger: (number | undefined)[] = [];
    const transport = new VirtioMmioTransport(dev, {
      memory: () => t.memory,
      queueEvents: dev.queueMaxSizes.map(() => t.events.factory.create({ nonBlocking: true })),
      line: { trigger: () => atTrigger.push(fp.read.get(Reg.InterruptStatus)) },
    });
    transport.attachMmioFastPath(fp);
    const drv = new MmioDriver(transport);
    drv.init([new MockSplitQueue(t.memory, 16)]);
    transport.interrupt.signalUsedQueue(0);
    transport.interrupt.signalConfigChange();
    expect(atTrigger).to.deep.equal([INT_VRING, INT_VRING | INT_CONFIG]);
  });

  it('stops publishing once the handle is disposed', () => {
    const { drv, q, fp, att, handle } = setup();
    drv.init([q]);
    handle.dispose();
    att.interrupt.signalUsedQueue(0);
    expect(fp.read.get(Reg.InterruptStatus)).to.equal(0);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(INT_VRING);
  });
});
