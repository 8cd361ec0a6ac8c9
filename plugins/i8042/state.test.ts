import { expect } from 'chai';
import { takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { Cmd } from './registers.js';
import { i8042TestBed } from './testing.js';

const make = i8042TestBed;

describe('i8042: state', () => {
  it('round-trips; the queued byte raises the line and a pending command completes after restore', () => {
    const a = make();
    a.drv.command(Cmd.WRITE_CTR, 0x47);
    a.drv.writeData(0xf2); // keyboard: identify -> an ACK queued
    a.drv.writeCommand(Cmd.WRITE_OUTPUT); // waits for its argument
    const b = make();
    const { first, second } = roundTripState(a.dev, b.dev);
    expect(second).to.deep.equal(first);
    expect(b.irq.level).to.equal(true);
    b.drv.writeData(0x03); // completes the pending WRITE_OUTPUT (bit 0 set: no reset)
    expect(b.resets()).to.equal(0);
    b.drv.writeCommand(Cmd.WRITE_OUTPUT);
    b.drv.writeData(0x00); // pulses the reset line
    expect(b.resets()).to.equal(1);
  });

  it('refuses hostile state', () => {
    const { dev } = make();
    const good = takeSnapshot(dev);
    expect(
      hostileStateProblems(dev, [
        withData(good, (d) => ({ ...d, output: new Array(17).fill(0) })),
        withData(good, (d) => ({ ...d, ctr: 256 })),
        withData(good, (d) => ({ ...d, pendingCommand: -1 })),
        withData(good, (d) => ({ ...d, lastWasCommand: 1 })),
        withData(good, (d) => ({ ...d, version: 1 })),
      ]),
    ).to.deep.equal([]);
  });
});
