import { expect } from 'chai';
import sinon from 'sinon';
import { RateLimiter, RateLimiterSchema } from './rate-limiter.js';
import { TokenBucket } from './token-bucket.js';

describe('core/ratelimit', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
  });
  afterEach(() => clock.restore());

  describe('TokenBucket', () => {
    it('starts full, empties, and refills linearly over refillTimeMs', () => {
      const b = new TokenBucket({ size: 1000, refillTimeMs: 100 }, () => performance.now());
      expect(b.canTake(1000)).to.equal(true);
      b.take(1000);
      expect(b.canTake(1)).to.equal(false);
      clock.tick(50);
      expect(b.available()).to.be.closeTo(500, 1e-6);
      expect(b.canTake(500)).to.equal(true);
      expect(b.canTake(501)).to.equal(false);
      clock.tick(1000);
      expect(b.available()).to.be.closeTo(1000, 1e-6); // never above size
    });

    it('spends the one-time burst first and never refills it', () => {
      const b = new TokenBucket({ size: 100, oneTimeBurst: 400, refillTimeMs: 100 }, () => performance.now());
      expect(b.available()).to.equal(500);
      b.take(450);
      expect(b.available()).to.equal(50);
      clock.tick(10_000);
      expect(b.available()).to.equal(100);
    });

    it('lets an oversized request through from a full bucket and makes later ones wait out the debt', () => {
      const b = new TokenBucket({ size: 100, refillTimeMs: 100 }, () => performance.now());
      expect(b.canTake(300)).to.equal(true);
      b.take(300); // budget -200
      expect(b.waitMs(100)).to.equal(300);
      clock.tick(299);
      expect(b.canTake(100)).to.equal(false);
      clock.tick(1);
      expect(b.canTake(100)).to.equal(true);
    });

    it('rejects a zero size or refill time', () => {
      expect(() => new TokenBucket({ size: 0, refillTimeMs: 10 }, () => 0)).to.throw(RangeError);
      expect(() => new TokenBucket({ size: 10, refillTimeMs: 0 }, () => 0)).to.throw(RangeError);
    });
  });

  describe('RateLimiter', () => {
    it('is unlimited without buckets', () => {
      const l = new RateLimiter();
      expect(l.unlimited).to.equal(true);
      for (let i = 0; i < 1000; i++) expect(l.tryConsume(1 << 20)).to.equal(true);
    });

    it('charges both buckets only when both allow it', () => {
      const l = new RateLimiter({
        bandwidth: { size: 4096, refillTimeMs: 1000 },
        ops: { size: 2, refillTimeMs: 1000 },
      });
      expect(l.tryConsume(1024)).to.equal(true);
      expect(l.tryConsume(1024)).to.equal(true);
      // ops bucket empty: the bytes bucket must not have been charged for the refusal
      expect(l.tryConsume(1024)).to.equal(false);
      clock.tick(500); // +1 op, +2048 bytes -> 4096 bytes available
      expect(l.tryConsume(2048)).to.equal(true);
      expect(l.throttled).to.equal(1);
    });

    it('defers, never drops: whenReady fires once the missing tokens have refilled', () => {
      const l = new RateLimiter({ bandwidth: { size: 1000, refillTimeMs: 100 } });
      expect(l.tryConsume(1000)).to.equal(true);
      expect(l.tryConsume(400)).to.equal(false);
      const ready = sinon.spy();
      l.whenReady(ready, 400);
      expect(l.blocked).to.equal(true);
      expect(l.tryConsume(1)).to.equal(false); // earlier waiter goes first
      clock.tick(39);
      expect(ready.called).to.equal(false);
      clock.tick(1);
      expect(ready.calledOnce).to.equal(true);
      expect(l.blocked).to.equal(false);
      expect(l.tryConsume(400)).to.equal(true);
    });

    it('refund gives tokens back and dispose cancels the timer', () => {
      const l = new RateLimiter({ ops: { size: 1, refillTimeMs: 1000 } });
      expect(l.tryConsume(0)).to.equal(true);
      l.refund(0);
      expect(l.tryConsume(0)).to.equal(true);
      expect(l.tryConsume(0)).to.equal(false);
      const ready = sinon.spy();
      l.whenReady(ready, 0);
      l.dispose();
      clock.tick(5000);
      expect(ready.called).to.equal(false);
    });

    it('schema rejects unknown keys and negative sizes', () => {
      expect(RateLimiterSchema.safeParse({ bandwidth: { size: 1, refillTimeMs: 1, bogus: 1 } }).success).to.equal(
        false,
      );
      expect(RateLimiterSchema.safeParse({ ops: { size: -1, refillTimeMs: 1 } }).success).to.equal(false);
      expect(
        RateLimiterSchema.parse({ ops: { size: 10, oneTimeBurst: 5, refillTimeMs: 100 } }).ops?.oneTimeBurst,
      ).to.equal(5);
    });
  });
});
