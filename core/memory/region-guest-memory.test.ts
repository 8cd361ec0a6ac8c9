import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestAddress, U64_MAX } from '../address.js';
import { GuestMemoryError } from './errors.js';
import { createHeapMemory } from './backends/heap.js';
import { makeRegion, RegionGuestMemory } from './region-guest-memory.js';
import { BackendGuestMemoryFactory } from './factory.js';

const A = (v: bigint | number) => GuestAddress.of(v);

function expectMemErr(fn: () => unknown, kind: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(GuestMemoryError);
    expect((e as GuestMemoryError).kind).to.equal(kind);
    return;
  }
  expect.fail('expected a GuestMemoryError');
}

describe('RegionGuestMemory', () => {
  // [0x1000, 0x2000) + [0x2000, 0x3000) adjacent, hole, [0x5000, 0x6000)
  const mk = () =>
    createHeapMemory({
      backend: 'heap',
      regions: [
        { start: 0x1000n, size: 0x1000n },
        { start: 0x2000n, size: 0x1000n },
        { start: 0x5000n, size: 0x1000n },
      ],
    });

  it('sliceAt: a view by number address inside one region; undefined where slice() would split or refuse', () => {
    const m = mk();
    m.write(A(0x1ff0), Uint8Array.of(1, 2, 3, 4));
    const v = m.sliceAt!(0x1ff0, 4)!;
    expect([...v]).to.deep.equal([1, 2, 3, 4]);
    v[0] = 9;
    expect(m.readU8(A(0x1ff0)), 'the view aliases guest memory').to.equal(9);
    expect(m.sliceAt!(0x2000, 0x1000, 'write')!.length).to.equal(0x1000);
    for (const [addr, len] of [
      [0x1ffe, 4], // crosses into the next region: slices() splits it
      [0x3000, 1], // a hole
      [0x5fff, 2], // runs past the end
      [0x1000, 0], // empty
      [0x1000, -1],
      [0.5, 1],
      [2 ** 53, 1],
      [-1, 1],
    ] as const)
      expect(m.sliceAt!(addr, len), `${addr}+${len}`).to.equal(undefined);
    const rom = new RegionGuestMemory([makeRegion(0x1000n, new Uint8Array(0x1000), 0n, { kind: 'heap' }, true)]);
    expect(rom.sliceAt(0x1000, 16, 'read')!.length).to.equal(16);
    expect(rom.sliceAt(0x1000, 16, 'write'), 'a writable view of read-only memory').to.equal(undefined);
    m.close();
    expect(m.sliceAt!(0x1ff0, 4), 'after close').to.equal(undefined);
    const high = new RegionGuestMemory([makeRegion(1n << 60n, new Uint8Array(0x1000), 0n, { kind: 'heap' })]);
    expect(high.sliceAt(2 ** 60, 16), 'a region above 2^53 is never matched by number').to.equal(undefined);
  });

  it('reports size and finds regions', () => {
    const m = mk();
    expect(m.size).to.equal(0x3000n);
    expect(m.findRegion(A(0x1fff))!.range.start.value).to.equal(0x1000n);
    expect(m.findRegion(A(0x2000))!.range.start.value).to.equal(0x2000n);
    expect(m.findRegion(A(0x3000))).to.equal(undefined);
    expect(m.findRegion(A(0xfff))).to.equal(undefined);
  });

  it('checks ranges at region edges', () => {
    const m = mk();
    expect(m.isValidRange(A(0x1000), 0x1000)).to.equal(true);
    expect(m.isValidRange(A(0x1000), 0x2000)).to.equal(true); // spans adjacent regions
    expect(m.isValidRange(A(0x1000), 0x2001)).to.equal(false); // into the hole
    expect(m.isValidRange(A(0x2fff), 1)).to.equal(true);
    expect(m.isValidRange(A(0x2fff), 2)).to.equal(false);
    expect(m.isValidRange(A(0xfff), 1)).to.equal(false);
    expect(m.isValidRange(A(0x5fff), 1)).to.equal(true);
    expect(m.isValidRange(A(0x5fff), 2)).to.equal(false);
    expect(m.isValidRange(A(0x5000), -1)).to.equal(false);
    expect(m.isValidRange(A(0x5000), 0.5)).to.equal(false);
  });

  it('reads and writes across adjacent regions, and refuses holes without touching anything', () => {
    const m = mk();
    m.write(A(0x1ffe), Uint8Array.of(1, 2, 3, 4));
    expect([...m.read(A(0x1ffe), 4)]).to.deep.equal([1, 2, 3, 4]);
    expect([...m.slices(A(0x1ffe), 4).map((s) => s.length)]).to.deep.equal([2, 2]);
    expectMemErr(() => m.slice(A(0x1ffe), 4), 'NotContiguous');
    expectMemErr(() => m.write(A(0x2ffe), Uint8Array.of(9, 9, 9, 9)), 'InvalidGuestAddress');
    expect([...m.read(A(0x2ffe), 2)]).to.deep.equal([0, 0]);
    m.writeU32(A(0x1ffe), 0xdeadbeef); // spanning integer
    expect(m.readU32(A(0x1ffe))).to.equal(0xdeadbeef);
    expect(m.readU16(A(0x2000))).to.equal(0xdead);
  });

  it('slice is zero-copy', () => {
    const m = mk();
    const s = m.slice(A(0x5010), 4);
    s[0] = 0x42;
    expect(m.readU8(A(0x5010))).to.equal(0x42);
    m.writeU8(A(0x5011), 7);
    expect(s[1]).to.equal(7);
  });

  it('little-endian integers', () => {
    const m = mk();
    m.writeU64(A(0x1008), 0x0102030405060708n);
    expect([...m.read(A(0x1008), 8)]).to.deep.equal([8, 7, 6, 5, 4, 3, 2, 1]);
    expect(m.readU64(A(0x1008))).to.equal(0x0102030405060708n);
    m.writeU16(A(0x1010), 0xabcd);
    expect(m.readU8(A(0x1010))).to.equal(0xcd);
    m.writeU64(A(0x1ffc), (1n << 64n) - 1n);
    expect(m.readU64(A(0x1ffc))).to.equal((1n << 64n) - 1n);
  });

  it('fill and readInto', () => {
    const m = mk();
    m.fill(A(0x1ff0), 0x20, 0xaa);
    const b = new Uint8Array(0x22);
    m.readInto(A(0x1fef), b);
    expect(b[0]).to.equal(0);
    expect(b[1]).to.equal(0xaa);
    expect(b[0x20]).to.equal(0xaa);
    expect(b[0x21]).to.equal(0);
  });

  it('handles addresses near 2^64 without wrapping', () => {
    const top = U64_MAX - 0xfffn; // last page of the address space
    const m = createHeapMemory({
      backend: 'heap',
      regions: [
        { start: 0n, size: 0x1000n },
        { start: top, size: 0x1000n },
      ],
    });
    m.writeU64(A(U64_MAX - 7n), 0x1122334455667788n);
    expect(m.readU64(A(U64_MAX - 7n))).to.equal(0x1122334455667788n);
    expect(m.isValidRange(A(U64_MAX), 1)).to.equal(true);
    expect(m.isValidRange(A(U64_MAX), 2)).to.equal(false); // would wrap to 0
    expect(m.isValidRange(A(U64_MAX - 3n), 8)).to.equal(false);
    expectMemErr(() => m.readU64(A(U64_MAX - 3n)), 'InvalidGuestAddress');
    expectMemErr(() => m.read(A(U64_MAX), 2), 'InvalidGuestAddress');
    expectMemErr(() => m.read(A(0), 2 ** 53), 'InvalidLength');
    expectMemErr(() => m.read(A(0), 2 ** 53 - 1), 'InvalidGuestAddress');
    expect(m.isValidRange(A(0), (1n << 64n) + 10n)).to.equal(false);
  });

  it('layouts: reads and writes named fields, rejects fields outside the struct', () => {
    const m = mk();
    const L = {
      a: { offset: 0, type: 'u8' },
      b: { offset: 2, type: 'u16' },
      c: { offset: 4, type: 'u32' },
      d: { offset: 8, type: 'u64' },
    } as const;
    m.writeLayout(A(0x1ff8), L, 16, { a: 1, b: 0x203, c: 0x4050607, d: 0x1020304050607080n });
    expect(m.readLayout(A(0x1ff8), L, 16)).to.deep.equal({ a: 1, b: 0x203, c: 0x4050607, d: 0x1020304050607080n });
    m.writeLayout(A(0x1ff8), L, 16, { b: 9 });
    expect(m.readLayout(A(0x1ff8), L, 16).b).to.equal(9);
    expectMemErr(() => m.readLayout(A(0x1000), { x: { offset: 6, type: 'u32' } }, 8), 'Layout');
    expectMemErr(() => m.writeLayout(A(0x2ff8), L, 16, { a: 5 }), 'InvalidGuestAddress');
    expect(m.readU8(A(0x2ff8))).to.equal(0); // nothing touched
  });

  it('read-only regions refuse writes', () => {
    const m = new RegionGuestMemory([makeRegion(0n, new Uint8Array(16), 0n, { kind: 'heap' }, true)]);
    expect(m.readU8(A(0))).to.equal(0);
    expectMemErr(() => m.writeU8(A(0), 1), 'ReadOnly');
  });

  it('rejects overlapping regions', () => {
    expectMemErr(
      () =>
        createHeapMemory({
          backend: 'heap',
          regions: [
            { start: 0n, size: 0x100n },
            { start: 0x80n, size: 0x100n },
          ],
        }),
      'InvalidRange',
    );
  });

  it('close() makes later accesses throw', () => {
    const m = mk();
    m.close();
    expectMemErr(() => m.readU8(A(0x1000)), 'Closed');
    expect(m.isValidRange(A(0x1000), 1)).to.equal(false);
    m.close(); // idempotent
  });

  it('readFromFile / writeToFile across regions (heap)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gm-'));
    try {
      const f = path.join(dir, 'x');
      fs.writeFileSync(f, Buffer.from([...Array(16).keys()]));
      const fd = fs.openSync(f, 'r+');
      const m = mk();
      expect(m.readFromFile(fd, A(0x1ff8), 16, 0)).to.equal(16);
      expect(m.readU8(A(0x2000))).to.equal(8);
      expect(m.readFromFile(fd, A(0x1000), 100, 10)).to.equal(6); // short read at EOF
      expect(m.writeToFile(fd, A(0x1ff8), 16, 16)).to.equal(16);
      fs.closeSync(fd);
      expect([...fs.readFileSync(f).subarray(16)]).to.deep.equal([...Array(16).keys()]);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('GuestMemory backends', () => {
  const factory = new BackendGuestMemoryFactory();
  const layout = {
    regions: [
      { start: 0n, size: 0x10000n },
      { start: 0x10000n, size: 0x10000n },
    ],
  };

  for (const backend of ['anonymous', 'memfd', 'file'] as const) {
    it(`${backend}: maps, has host addresses, pread/pwrite through them`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gm-'));
      try {
        const m = factory.create({ ...layout, backend, path: path.join(dir, 'ram') });
        expect(m.regions).to.have.length(2);
        expect(m.regions[0].hostAddress).to.not.equal(0n);
        expect(m.regions[0].backing.kind).to.equal(backend);
        m.writeU32(A(0xfffe), 0x11223344);
        expect(m.readU32(A(0xfffe))).to.equal(0x11223344);
        const f = path.join(dir, 'data');
        fs.writeFileSync(f, Buffer.alloc(64, 0x5a));
        const fd = fs.openSync(f, 'r+');
        expect(m.readFromFile(fd, A(0xffe0), 64, 0)).to.equal(64);
        expect(m.readU8(A(0x1001f))).to.equal(0x5a);
        m.writeU8(A(0x10000), 1);
        expect(m.writeToFile(fd, A(0xffe0), 64, 64)).to.equal(64);
        fs.closeSync(fd);
        expect(fs.readFileSync(f)[64 + 32]).to.equal(1);
        if (backend === 'file') expect(fs.statSync(path.join(dir, 'ram')).size).to.equal(0x20000);
        m.close();
        expectMemErr(() => m.readU8(A(0)), 'Closed');
      } finally {
        fs.rmSync(dir, { recursive: true });
      }
    });
  }

  it('mmap backends reject unaligned regions; file needs a path', () => {
    expectMemErr(
      () => factory.create({ backend: 'anonymous', regions: [{ start: 0x10n, size: 0x1000n }] }),
      'InvalidRange',
    );
    expectMemErr(() => factory.create({ backend: 'file', regions: [{ start: 0n, size: 0x1000n }] }), 'Backend');
  });
});
