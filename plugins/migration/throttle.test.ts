import { expect } from 'chai';
import { VcpuThrottle } from './throttle.js';

/** A machine that records pause and resume calls, and whether it is held now. */
function fakeMachine(): { calls: string[]; held: () => boolean; pause(): Promise<void>; resume(): Promise<void> } {
  const calls: string[] = [];
  return {
    calls,
    held: () => calls[calls.length - 1] === 'pause',
    pause: async () => void calls.push('pause'),
    resume: async () => void calls.push('resume'),
  };
}

/** Resolves once `check` holds (polling; the throttle runs on timers). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(check(), 'reached').to.equal(true);
}

describe('migration: auto-converge, holding the vCPUs for a share of each period (throttle.ts)', () => {
  it('does nothing until stepped; then 20 %, 10 % more per step, at most 90 %', async () => {
    const m = fakeMachine();
    const t = new VcpuThrottle(m, 10);
    expect(t.percent).to.equal(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(m.calls).to.deep.equal([]);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map(() => t.step())).to.deep.equal([20, 30, 40, 50, 60, 70, 80, 90, 90]);
    await t.stop();
  });

  it('pauses and resumes the machine over and over, and stop() leaves it running, even mid-hold', async () => {
    const m = fakeMachine();
    const t = new VcpuThrottle(m, 1000); // long periods: the stop comes while the vCPUs are held
    t.step();
    await until(() => m.held());
    await t.stop();
    expect(m.calls).to.deep.equal(['pause', 'resume']);
    expect(t.step(), 'no more throttling once stopped').to.equal(20);
    await new Promise((r) => setTimeout(r, 10));
    expect(m.calls).to.have.length(2);

    const quick = fakeMachine();
    const q = new VcpuThrottle(quick, 4);
    q.step();
    await until(() => quick.calls.length >= 6);
    await q.stop();
    expect(quick.held()).to.equal(false);
    expect(quick.calls.every((c, i) => c === (i % 2 ? 'resume' : 'pause'))).to.equal(true);
  });
});
