import { expect } from 'chai';
import { exitSummary } from './run-guest.js';

describe('bench exitSummary', () => {
  it("summarises the kvm plugin's exit statistics, costliest kind first", () => {
    const rec = {
      level: 'info',
      exits: {
        io: { count: 591, totalNs: 6.6e9 },
        intr: { count: 97, totalNs: 2.5e9 },
        mmio: { count: 1, totalNs: 2e7 },
      },
      guestMs: 85155.6,
      hops: { 'pio 0x3fa in': 314, 'pio 0x70 out': 79 },
      msg: 'vCPU exit statistics',
    };
    const s = exitSummary(`noise\n${JSON.stringify(rec)}\n{"msg":"machine stopped"}`);
    expect(s).to.equal(
      'in guest 85156 ms; exits io 591 (6600 ms), intr 97 (2500 ms), mmio 1 (20 ms); hops pio 0x3fa in x314, pio 0x70 out x79',
    );
    expect(exitSummary('{"msg":"machine stopped"}')).to.equal(undefined);
  });
});
