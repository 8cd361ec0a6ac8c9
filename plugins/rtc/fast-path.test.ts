import { expect } from 'chai';
import type { BusDevice } from '../../core/bus/bus.js';
import type { PioFastPath, PioWriteMode } from '../../core/bus/fast-path.js';
import { CmosRtc } from './device.js';
import { Reg, RegB } from './registers.js';
import { CmosDriver, ManualClock } from './testing.js';

/**
 * The device as a vCPU runner with fast paths shows it to the guest (plugins/kvm/README.md "Worker fast paths"):
 * writes published as 'queue' wait and reach the device (through write(), in order) right before the next access
 * that hops to it; reads with a published value never reach it. `hops` counts the accesses that reached it.
 */
class FastPathView implements BusDevice, PioFastPath {
  readonly reads = new Map<number, number>();
  readonly writes = new Map<number, PioWriteMode>();
  private readonly queued: [number, number][] = [];
  hops = 0;
  constructor(private readonly dev: CmosRtc) {
    dev.attachPioFastPath(this);
  }
  setReadValue(offset: number, value: number | undefined): void {
    if (value === undefined) this.reads.delete(offset);
    else this.reads.set(offset, value);
  }
  setWriteMode(offset: number, mode: PioWriteMode): void {
    this.writes.set(offset, mode);
  }
  private hop(): void {
    for (const [o, v] of this.queued.splice(0)) this.dev.write(BigInt(o), Uint8Array.of(v));
    this.hops++;
  }
  read(offset: bigint, data: Uint8Array): void {
    const v = this.reads.get(Number(offset));
    if (v !== undefined) {
      data[0] = v;
      return;
    }
    this.hop();
    this.dev.read(offset, data);
  }
  write(offset: bigint, data: Uint8Array): void {
    if (this.writes.get(Number(offset)) === 'queue') {
      this.queued.push([Number(offset), data[0]]);
      return;
    }
    this.hop();
    this.dev.write(offset, data);
  }
}

const T0 = Date.UTC(2026, 10, 25, 15, 4, 5) + 500;

describe('rtc: fast path', () => {
  it("costs Linux's clock read one hop per CMOS byte instead of two, with the same bytes", () => {
    const direct = new CmosDriver(new CmosRtc({ id: 'rtc', clock: new ManualClock(T0) }));
    const view = new FastPathView(new CmosRtc({ id: 'rtc', clock: new ManualClock(T0) }));
    const fast = new CmosDriver(view);
    const want = direct.linuxGetTime();
    const got = fast.linuxGetTime();
    expect(got).to.deep.equal(want);
    expect(view.hops).to.equal(fast.accesses / 2, 'index writes wait in the queue, data reads hop');
    expect(view.writes.get(1) ?? 'device', 'data writes reach the device at once').to.equal('device');
  });

  it('keeps every index write in order: set the time under SET, read it back, NVRAM bytes', () => {
    const view = new FastPathView(new CmosRtc({ id: 'rtc', clock: new ManualClock(T0) }));
    const io = new CmosDriver(view);
    io.write(Reg.B, RegB.HOURS_24 | RegB.SET);
    io.write(Reg.YEAR, 0x31);
    io.write(Reg.MONTH, 0x07);
    io.write(Reg.B, RegB.HOURS_24);
    io.write(0x40, 0xa5);
    io.write(0x41, 0x5a);
    expect([io.read(Reg.YEAR), io.read(Reg.MONTH), io.read(0x40), io.read(0x41)]).to.deep.equal([
      0x31, 0x07, 0xa5, 0x5a,
    ]);
  });

  it('answers index-port reads with 0xff on the fast path, as the device does', () => {
    const rtc = new CmosRtc({ id: 'rtc', clock: new ManualClock(T0) });
    const view = new FastPathView(rtc);
    const d = new Uint8Array(1);
    rtc.read(0n, d);
    expect(view.reads.get(0)).to.equal(d[0]).and.to.equal(0xff);
  });
});
