import { expect } from 'chai';
import { LogRateLimiter, suppressedNote } from './log-limiter.js';

describe('LogRateLimiter', () => {
  it('lets a burst through per key, counts the rest, and reports the count with the next line', () => {
    let t = 0;
    const lim = new LogRateLimiter({ burst: 3, refillMs: 3000 }, () => t);
    const out: string[] = [];
    for (let i = 0; i < 100; i++) lim.log('a', (n) => out.push(`a${i}${suppressedNote(n)}`));
    lim.log('b', (n) => out.push(`b${suppressedNote(n)}`));
    expect(out).to.deep.equal(['a0', 'a1', 'a2', 'b']);
    t = 1000; // one token back
    expect(lim.log('a', (n) => out.push(`late${suppressedNote(n)}`))).to.equal(true);
    expect(out.at(-1)).to.equal('late (97 similar messages suppressed)');
    expect(lim.log('a', () => out.push('x'))).to.equal(false);
  });
});
