import { expect } from 'chai';
import { takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { CmosRtc } from './device.js';
import { Reg } from './registers.js';
import { CmosDriver, ManualClock } from './testing.js';

const T0 = Date.UTC(2026, 10, 25, 15, 4, 5) + 500;

function make(ms = T0) {
  const clock = new ManualClock(ms);
  const rtc = new CmosRtc({ id: 'rtc', clock });
  return { rtc, clock, io: new CmosDriver(rtc) };
}

const readTime = (io: CmosDriver) =>
  [Reg.YEAR, Reg.MONTH, Reg.DAY_OF_MONTH, Reg.HOURS, Reg.MINUTES, Reg.SECONDS].map((r) => io.read(r));

describe('rtc: state', () => {
  it('round-trips NVRAM and the guest offset; the restored clock keeps running from the host clock', () => {
    const a = make();
    a.io.write(Reg.MINUTES, 0x45);
    a.io.write(0x50, 0xab);
    const b = make();
    const { first, second } = roundTripState(a.rtc, b.rtc);
    expect(second).to.deep.equal(first);
    expect(readTime(b.io)).to.deep.equal(readTime(a.io));
    expect(b.io.read(0x50)).to.equal(0xab);
    b.clock.advance(2000);
    expect(b.io.read(Reg.SECONDS)).to.equal(0x07);
    expect(b.io.read(Reg.MINUTES)).to.equal(0x45);
  });

  it('refuses hostile state', () => {
    const { rtc } = make();
    const good = takeSnapshot(rtc);
    expect(
      hostileStateProblems(rtc, [
        withData(good, (d) => ({ ...d, cmos: [1, 2] })),
        withData(good, (d) => ({ ...d, offsetMs: Number.MAX_VALUE })),
        withData(good, (d) => ({ ...d, offsetMs: 1.5 })),
        withData(good, (d) => ({ ...d, index: 0x80 })),
        withData(good, (d) => ({ ...d, cmos: new Array(128).fill(256) })),
      ]),
    ).to.deep.equal([]);
  });
});
