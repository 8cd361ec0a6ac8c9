import { expect } from 'chai';
import { StartupTimings } from './timings.js';

describe('StartupTimings', () => {
  it('records steps in order with their time since process start and prints deltas', () => {
    let t = 100;
    const s = new StartupTimings(() => t);
    s.mark('config loaded');
    t = 350.26;
    s.mark('started');
    expect(s.marks).to.deep.equal([
      { step: 'config loaded', ms: 100 },
      { step: 'started', ms: 350.3 },
    ]);
    const lines = s.format().split('\n');
    expect(lines).to.have.length(2);
    expect(lines[1]).to.match(/350\.3 ms\s+\+\s*250\.3\s+started$/);
    s.clear();
    expect(s.marks).to.have.length(0);
  });
});
