import { expect } from 'chai';
import fc from 'fast-check';
import { testPlatformLayout } from '../testing/test-layout.js';
import { PlatformError } from './errors.js';
import type { PlatformLayout, SpaceLayout } from './layout.js';
import { PlatformResources } from './platform-resources.js';
import { RangeAllocator, type HeldRange } from './range-allocator.js';

const kindOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(PlatformError);
    return (err as PlatformError).kind;
  }
  return undefined;
};

describe('platform: Resources service', () => {
  it('allocates first fit, aligned, and reuses a freed place (hotplug)', () => {
    const r = new PlatformResources(testPlatformLayout());
    const a = r.allocate('mmio32', { owner: 'a', size: 0x1000n, align: 0x1000n });
    const b = r.allocate('mmio32', { owner: 'b', size: 0x1000n, align: 0x1000n });
    expect([a.start, b.start]).to.deep.equal([0xd000_1000n, 0xd000_2000n]);
    const c = r.allocate('mmio32', { owner: 'c', size: 0x4000n, align: 0x4000n });
    expect(c.start).to.equal(0xd000_4000n);
    a.dispose();
    a.dispose(); // idempotent
    expect(r.allocate('mmio32', { owner: 'd', size: 0x1000n, align: 0x1000n }).start).to.equal(0xd000_1000n);
    expect(r.allocations('mmio32').map((x) => x.owner)).to.deep.equal(['d', 'b', 'c']);
  });

  it('reserves fixed places for legacy devices and names the holder on a clash', () => {
    const r = new PlatformResources(testPlatformLayout());
    const com1 = r.reserve('pio', 0x3f8n, { owner: 'serial', size: 8n });
    expect(com1.range.toString()).to.equal('[0x3f8, 0x400)');
    expect(() => r.reserve('pio', 0x3ffn, { owner: 'other', size: 2n })).to.throw(
      PlatformError,
      "port 0x3ff-0x400 wanted by 'other' overlaps port 0x3f8-0x3ff held by 'serial'",
    );
    expect(r.reserve('irq', 4n, { owner: 'serial' }).number).to.equal(4);
    expect(kindOf(() => r.reserve('irq', 4n, { owner: 'com3' }))).to.equal('Taken');
    expect(kindOf(() => r.reserve('irq', 8n, { owner: 'x' }))).to.equal('Taken'); // the layout keeps 8
    expect(kindOf(() => r.reserve('irq', 24n, { owner: 'x' }))).to.equal('OutOfRange');
    expect(kindOf(() => r.reserve('pio', 0xffffn, { owner: 'x', size: 2n }))).to.equal('OutOfRange');
    com1.dispose();
    expect(r.reserve('pio', 0x3f8n, { owner: 'serial2', size: 8n }).owner).to.equal('serial2');
  });

  it('hands out lines 5..23 skipping 8 and taken lines, then says it is exhausted', () => {
    const r = new PlatformResources(testPlatformLayout());
    r.reserve('irq', 6n, { owner: 'floppy' });
    const got = Array.from({ length: 17 }, () => r.allocate('irq', { owner: 'dev' }).number);
    expect(got).to.deep.equal([5, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
    expect(() => r.allocate('irq', { owner: 'late' })).to.throw(
      PlatformError,
      "no free irq place of 1 (aligned to 1) for 'late' in IRQ 5-23",
    );
  });

  it('keeps MSI GSIs apart from lines and the 64-bit window apart from the hole', () => {
    const r = new PlatformResources(testPlatformLayout());
    expect(r.allocate('msi', { owner: 'nic' }).number).to.equal(24);
    const big = r.allocate('mmio64', { owner: 'bar', size: 1n << 32n, align: 1n << 32n });
    expect(big.start).to.equal(64n << 30n);
    expect(r.window('mmio64').range.start).to.equal(64n << 30n);
  });

  it('refuses malformed requests with one-line errors', () => {
    const r = new PlatformResources(testPlatformLayout());
    expect(kindOf(() => r.allocate('mmio32', { owner: 'x', size: 0n }))).to.equal('Invalid');
    expect(kindOf(() => r.allocate('mmio32', { owner: 'x', size: 0x1000n, align: 3n }))).to.equal('Invalid');
    expect(kindOf(() => r.allocate('mmio32', { owner: 'x', size: 1n << 40n }))).to.equal('Invalid');
    expect(kindOf(() => r.allocate('nope' as never, { owner: 'x' }))).to.equal('Invalid');
    expect(() => r.legacyIrq('LPT1')).to.throw(PlatformError, "no legacy interrupt line 'LPT1'");
    expect(r.legacyIrq('com1')).to.equal(4);
  });

  it('checks the layout on first use: alloc outside range, legacy line outside the pins', () => {
    const bad: PlatformLayout = { ...testPlatformLayout(), legacyIrqs: { com1: 99 } };
    expect(kindOf(() => new PlatformResources(bad).allocate('irq', { owner: 'x' }))).to.equal('Invalid');
    const l = testPlatformLayout();
    const worse: PlatformLayout = {
      ...l,
      spaces: { ...l.spaces, pio: { range: { start: 0x1000n, end: 0x2000n }, alloc: { start: 0n, end: 0x2000n } } },
    };
    expect(kindOf(() => new PlatformResources(worse).layout)).to.equal('Invalid');
    let asked = 0;
    const lazy = new PlatformResources(() => {
      asked++;
      return testPlatformLayout();
    });
    expect(asked).to.equal(0);
    lazy.allocate('irq', { owner: 'a' });
    lazy.allocate('irq', { owner: 'b' });
    expect(asked).to.equal(1);
  });
});

/** A random sequence of operations on one small space, checked against a brute-force model. */
type Op =
  | { op: 'allocate'; size: number; alignLog: number }
  | { op: 'reserve'; start: number; size: number }
  | { op: 'free'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('allocate' as const),
    size: fc.integer({ min: 1, max: 20 }),
    alignLog: fc.integer({ min: 0, max: 4 }),
  }),
  fc.record({
    op: fc.constant('reserve' as const),
    start: fc.integer({ min: -4, max: 70 }),
    size: fc.integer({ min: 1, max: 12 }),
  }),
  fc.record({ op: fc.constant('free' as const), pick: fc.nat() }),
);

describe('platform: RangeAllocator properties', () => {
  const layout: SpaceLayout = { range: { start: 0n, end: 64n }, alloc: { start: 8n, end: 60n } };

  it('never overlaps, stays in bounds, is aligned, and fails only when no place exists', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const a = new RangeAllocator('mmio32', layout);
        const model = new Array<boolean>(64).fill(false);
        const held: HeldRange[] = [];
        const free = (s: bigint, n: bigint): boolean => {
          for (let i = s; i < s + n; i++) if (model[Number(i)]) return false;
          return true;
        };
        const mark = (h: HeldRange, v: boolean): void => {
          for (let i = h.start; i < h.start + h.size; i++) model[Number(i)] = v;
        };
        for (const o of ops) {
          if (o.op === 'allocate') {
            const size = BigInt(o.size);
            const align = 1n << BigInt(o.alignLog);
            let expected: bigint | undefined;
            for (let s = 8n; s + size <= 60n; s += 1n)
              if (s % align === 0n && free(s, size)) {
                expected = s;
                break;
              }
            if (expected === undefined) {
              expect(kindOf(() => a.allocate(size, align, 'x'))).to.equal('Exhausted');
            } else {
              const h = a.allocate(size, align, 'x');
              expect(h.start).to.equal(expected); // first fit: the lowest aligned free place
              mark(h, true);
              held.push(h);
            }
          } else if (o.op === 'reserve') {
            const start = BigInt(o.start);
            const size = BigInt(o.size);
            if (start < 0n || start + size > 64n)
              expect(kindOf(() => a.reserve(start, size, 'r'))).to.equal('OutOfRange');
            else if (!free(start, size)) expect(kindOf(() => a.reserve(start, size, 'r'))).to.equal('Taken');
            else {
              const h = a.reserve(start, size, 'r');
              mark(h, true);
              held.push(h);
            }
          } else if (held.length) {
            const [h] = held.splice(o.pick % held.length, 1);
            expect(a.release(h)).to.equal(true);
            expect(a.release(h)).to.equal(false);
            mark(h, false);
          }
          const list = a.list();
          for (let i = 1; i < list.length; i++)
            expect(list[i - 1].start + list[i - 1].size <= list[i].start).to.equal(true);
          expect(list.length).to.equal(held.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});
