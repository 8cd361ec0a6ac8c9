import { expect } from 'chai';
import { GuestRange } from '../address.js';
import { BusError } from './errors.js';
import { LogRateLimiter } from '../ratelimit/log-limiter.js';
import { RangeBus } from './range-bus.js';
import type { BusDevice } from './bus.js';

class Rec implements BusDevice {
  log: string[] = [];
  read(offset: bigint, data: Uint8Array): void {
    this.log.push(`r${offset}:${data.length}`);
    data.fill(0x11);
  }
  write(offset: bigint, data: Uint8Array): void {
    this.log.push(`w${offset}:${[...data].join(',')}`);
  }
}

describe('RangeBus', () => {
  it('dispatches by address with the offset into the range, per space', () => {
    const bus = new RangeBus();
    const a = new Rec(),
      b = new Rec();
    bus.register('pio', GuestRange.of(0x3f8, 8), a, 'serial');
    bus.register('mmio', GuestRange.of(0x3f8, 8), b, 'mmio-dev');
    const d = new Uint8Array(1);
    expect(bus.read('pio', 0x3fan, d)).to.equal(true);
    expect(d[0]).to.equal(0x11);
    bus.write('mmio', 0x3ffn, Uint8Array.of(5));
    expect(a.log).to.deep.equal(['r2:1']);
    expect(b.log).to.deep.equal(['w7:5']);
  });

  it('rejects overlaps naming both devices, allows touching ranges', () => {
    const bus = new RangeBus();
    bus.register('mmio', GuestRange.of(0x1000, 0x100), new Rec(), 'first');
    bus.register('mmio', GuestRange.of(0x1100, 0x100), new Rec(), 'touching');
    bus.register('mmio', GuestRange.of(0x800, 0x800), new Rec(), 'below');
    expect(() => bus.register('mmio', GuestRange.of(0x10ff, 2), new Rec(), 'second')).to.throw(
      BusError,
      /'second'.*'first'/,
    );
    expect(() => bus.register('mmio', GuestRange.of(0x0, 0x10000), new Rec(), 'huge')).to.throw(BusError, /huge/);
    expect(bus.registrations('mmio').map((r) => r.name)).to.deep.equal(['below', 'first', 'touching']);
    // a different space does not conflict
    bus.register('pio', GuestRange.of(0x1000, 0x100), new Rec(), 'pio-one');
  });

  it('unclaimed accesses read as all ones and are counted, including straddling a range end', () => {
    const bus = new RangeBus();
    const a = new Rec();
    bus.register('pio', GuestRange.of(0x70, 2), a, 'cmos');
    const d = new Uint8Array(4);
    expect(bus.read('pio', 0x80n, d)).to.equal(false);
    expect([...d]).to.deep.equal([255, 255, 255, 255]);
    expect(bus.read('pio', 0x71n, new Uint8Array(2))).to.equal(false); // straddles the end
    expect(bus.write('mmio', 0x70n, d)).to.equal(false);
    expect(bus.unclaimed).to.deep.equal({ pio: 2, mmio: 1 });
    expect(a.log).to.deep.equal([]);
  });

  it('unregister and dispose remove the device', () => {
    const bus = new RangeBus();
    const h = bus.register('mmio', GuestRange.of(0xd0000000n, 0x1000), new Rec(), 'x');
    bus.register('mmio', GuestRange.of(0xd0001000n, 0x1000), new Rec(), 'y');
    h.dispose();
    h.dispose();
    expect(bus.find('mmio', 0xd0000000n)).to.equal(undefined);
    bus.unregister('mmio', GuestRange.of(0xd0001000n, 0x1000));
    expect(bus.registrations()).to.have.length(0);
    expect(() => bus.unregister('mmio', GuestRange.of(0xd0001000n, 0x1000))).to.throw(BusError);
  });

  it('a throwing device is contained: counted, reported, read returns all ones', () => {
    const bus = new RangeBus();
    const seen: string[] = [];
    bus.onDeviceError((err, info) => seen.push(`${info.name}:${(err as Error).message}:${info.isWrite}`));
    bus.register(
      'pio',
      GuestRange.of(0x60, 1),
      {
        read: () => {
          throw new Error('boom');
        },
        write: () => {
          throw new Error('bang');
        },
      },
      'kbd',
    );
    const d = Uint8Array.of(0);
    expect(bus.read('pio', 0x60n, d)).to.equal(true);
    expect(d[0]).to.equal(0xff);
    expect(() => bus.write('pio', 0x60n, d)).to.not.throw();
    expect(seen).to.deep.equal(['kbd:boom:false', 'kbd:bang:true']);
    expect(bus.deviceErrors.pio).to.equal(2);
  });

  it('a device failing every access is logged as a warning, rate-limited (not one error line per access)', () => {
    const lines: { level: string; msg?: string }[] = [];
    const rec = (level: string) => (_o: object | string, msg?: string) => {
      lines.push({ level, msg });
    };
    const logger = {
      trace: rec('trace'),
      debug: rec('debug'),
      info: rec('info'),
      warn: rec('warn'),
      error: rec('error'),
      child: () => logger,
    };
    let t = 0;
    const bus = new RangeBus(logger, new LogRateLimiter({ burst: 5, refillMs: 5000 }, () => t));
    bus.register(
      'mmio',
      GuestRange.of(0x1000, 4),
      {
        read: () => {
          throw new Error('boom');
        },
        write: () => {},
      },
      'bad',
    );
    for (let i = 0; i < 10_000; i++) bus.read('mmio', 0x1000n, new Uint8Array(4));
    expect(bus.deviceErrors.mmio).to.equal(10_000);
    expect(lines).to.have.length(5);
    expect(lines.every((l) => l.level === 'warn')).to.equal(true);
    t = 1000;
    bus.read('mmio', 0x1000n, new Uint8Array(4));
    expect(lines.at(-1)!.msg).to.equal("device 'bad' failed a mmio read (9995 similar messages suppressed)");
  });

  it('rejects PIO ranges past port 0xffff', () => {
    expect(() => new RangeBus().register('pio', GuestRange.of(0xfffe, 4), new Rec(), 'p')).to.throw(BusError);
  });

  it('finds the right device among many (binary search)', () => {
    const bus = new RangeBus();
    const devs: Rec[] = [];
    for (let i = 99; i >= 0; i--) {
      const r = new Rec();
      devs[i] = r;
      bus.register('mmio', GuestRange.of(BigInt(i) * 0x1000n, 0x10), r, `d${i}`);
    }
    for (let i = 0; i < 100; i++) expect(bus.find('mmio', BigInt(i) * 0x1000n + 0xfn)!.name).to.equal(`d${i}`);
    expect(bus.find('mmio', 0x10n)).to.equal(undefined);
  });
});
