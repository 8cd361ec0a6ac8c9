import { expect } from 'chai';
import { BootTimer } from './device.js';
import { bootTimes, type BootTime } from './boot-times.js';
import { ManualMonotonic, writeBootMarker } from './testing.js';
import { RecordingLogger } from '../serial/testing.js';

describe('boot-timer: BootTimer', () => {
  it('logs "guest boot completed in N ms" from its creation, with process and vCPU start figures', async () => {
    const clock = new ManualMonotonic(1000);
    const logger = new RecordingLogger();
    const dev = new BootTimer({ id: 'boot-timer', logger, now: clock.now });
    clock.ms = 1040;
    dev.markStarted();
    const booted = dev.whenBooted();
    clock.ms = 1250.5;
    writeBootMarker(dev);
    const t = await booted;
    expect(t).to.deep.equal({
      device: 'boot-timer',
      ms: 250.5,
      sinceProcessStartMs: 1250.5,
      sinceStartedMs: 210.5,
      count: 1,
    });
    expect(logger.messages('info')).to.deep.equal(['guest boot completed in 250.5 ms']);
    expect(dev.last).to.equal(t);
    expect(dev.metrics.toJSON()).to.deep.equal({ bootTimeMs: 250.5, markers: 1, otherWrites: 0 });
    expect(await dev.whenBooted(), 'already booted: resolves at once').to.equal(t);
  });

  it('emits on the process-wide bootTimes hook', () => {
    const seen: BootTime[] = [];
    const cb = (t: BootTime): void => {
      seen.push(t);
    };
    bootTimes.on('boot', cb);
    try {
      writeBootMarker(new BootTimer({ id: 'vm-a', now: new ManualMonotonic(5).now }));
    } finally {
      bootTimes.off('boot', cb);
    }
    expect(seen.map((t) => t.device)).to.deep.equal(['vm-a']);
  });

  it('ignores anything but the marker byte at offset 0, and reads as zeros', () => {
    const logger = new RecordingLogger();
    const dev = new BootTimer({ id: 'bt', logger });
    dev.write(0n, Uint8Array.of(122));
    dev.write(4n, Uint8Array.of(123));
    dev.write(0n, Uint8Array.of(123, 1, 0, 0));
    dev.write(0n, new Uint8Array(0));
    expect(dev.last).to.equal(undefined);
    expect(dev.metrics.otherWrites).to.equal(4);
    dev.write(0n, Uint8Array.of(123, 0, 0, 0)); // devmem ... 32 123
    expect(dev.metrics.markers).to.equal(1);
    const d = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    dev.read(0x10n, d);
    expect([...d]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('reports the first boot once, counts repeats, and survives a throwing listener', () => {
    const logger = new RecordingLogger();
    const dev = new BootTimer({ id: 'bt', logger });
    dev.on('boot', () => {
      throw new Error('listener bug');
    });
    expect(() => {
      for (let i = 0; i < 50; i++) writeBootMarker(dev);
    }).to.not.throw();
    expect(dev.metrics.markers).to.equal(50);
    expect(logger.messages('info')).to.have.length(1);
    expect(dev.last?.count).to.equal(1);
  });

  it('measures a restarted VM from its reset', () => {
    const clock = new ManualMonotonic(0);
    const dev = new BootTimer({ id: 'bt', now: clock.now });
    clock.ms = 100;
    writeBootMarker(dev);
    clock.ms = 1000;
    dev.reset();
    expect(dev.last).to.equal(undefined);
    clock.ms = 1030;
    writeBootMarker(dev);
    expect(dev.last?.ms).to.equal(30);
  });
});
