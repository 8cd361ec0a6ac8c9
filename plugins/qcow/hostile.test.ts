import { expect } from 'chai';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { createQcow2 } from './create.js';
import { QcowError, type QcowErrorKind } from './errors.js';
import { openQcow2 } from './open.js';
import { fillRandom, tempDir } from './testing.js';

/** Malformed images: a clear QcowError with a kind, never a crash or a read outside the file. */
describe('qcow: hostile images', function () {
  this.timeout(60_000);
  const t = tempDir();
  const CS = 4096;
  let base: Buffer;
  let l1Off: number;
  let rtOff: number;
  let l2Off: number;

  before(async () => {
    const f = t.path('base.qcow2');
    await createQcow2({ path: f, size: 3 << 20, clusterSize: CS, refcountBits: 16 });
    const img = await openQcow2({ path: f, readOnly: false });
    await img.write(0n, [fillRandom(new Uint8Array(5 * CS + 100), 1)]);
    await img.write(BigInt(2 << 20), [fillRandom(new Uint8Array(CS), 2)]);
    await img.writeCompressed(20, new Uint8Array(CS).fill(0x61));
    await img.writeZeroes(BigInt(40 * CS), BigInt(2 * CS), false);
    await img.close();
    base = readFileSync(f);
    l1Off = Number(base.readBigUInt64BE(40));
    rtOff = Number(base.readBigUInt64BE(48));
    l2Off = Number(base.readBigUInt64BE(l1Off) & 0x00fffffffffffe00n);
  });
  after(() => t.cleanup());

  let n = 0;
  function mutated(edit: (b: Buffer) => void): string {
    const b = Buffer.from(base);
    edit(b);
    const p = t.path(`m${n++}.qcow2`);
    writeFileSync(p, b);
    return p;
  }

  /** Opens (and reads everything); resolves to the error, or undefined when all worked. */
  async function tryAll(path: string, readOnly = true): Promise<unknown> {
    try {
      const img = await openQcow2({ path, readOnly });
      try {
        const all = new Uint8Array(img.virtualSize);
        await img.read(0n, [all]);
        if (!readOnly) {
          await img.write(BigInt(CS + 7), [new Uint8Array(3 * CS).fill(9)]);
          await img.write(BigInt(30 * CS), [new Uint8Array(100).fill(9)]);
          await img.discard(0n, BigInt(2 * CS));
          await img.writeZeroes(BigInt(20 * CS), BigInt(CS), true);
          await img.flush();
        }
      } finally {
        await img.close().catch(() => undefined);
      }
      return undefined;
    } catch (e) {
      return e;
    }
  }

  async function expectKind(path: string, kind: QcowErrorKind, readOnly = true): Promise<void> {
    const e = await tryAll(path, readOnly);
    expect(e, 'expected a QcowError').to.be.instanceOf(QcowError);
    expect((e as QcowError).kind, (e as Error).message).to.equal(kind);
  }

  it('the unmodified base image opens, reads and writes', async () => {
    expect(
      await tryAll(
        mutated(() => undefined),
        false,
      ),
    ).to.equal(undefined);
  });

  const cases: Array<[string, QcowErrorKind, (b: Buffer) => void]> = [
    ['bad magic', 'BadMagic', (b) => b.writeUInt32BE(0x12345678, 0)],
    ['version 1', 'BadVersion', (b) => b.writeUInt32BE(1, 4)],
    ['version 4', 'BadVersion', (b) => b.writeUInt32BE(4, 4)],
    ['cluster_bits 8', 'BadClusterSize', (b) => b.writeUInt32BE(8, 20)],
    ['cluster_bits 22', 'BadClusterSize', (b) => b.writeUInt32BE(22, 20)],
    ['header_length 96', 'BadHeader', (b) => b.writeUInt32BE(96, 100)],
    ['header_length not a multiple of 8', 'BadHeader', (b) => b.writeUInt32BE(108, 100)],
    ['header_length beyond the cluster', 'BadHeader', (b) => b.writeUInt32BE(CS + 8, 100)],
    ['external data file bit', 'UnsupportedFeature', (b) => b.writeBigUInt64BE(1n << 2n, 72)],
    ['extended L2 bit', 'UnsupportedFeature', (b) => b.writeBigUInt64BE(1n << 4n, 72)],
    ['unknown incompatible bit 40', 'UnsupportedFeature', (b) => b.writeBigUInt64BE(1n << 40n, 72)],
    ['AES encryption', 'Encrypted', (b) => b.writeUInt32BE(1, 32)],
    ['LUKS encryption', 'Encrypted', (b) => b.writeUInt32BE(2, 32)],
    ['refcount_order 7', 'BadRefcountOrder', (b) => b.writeUInt32BE(7, 96)],
    ['compression type 2', 'UnsupportedFeature', (b) => b.writeUInt8(2, 104)],
    ['zstd type without the incompatible bit', 'BadHeader', (b) => b.writeUInt8(1, 104)],
    ['L1 table of 2^25 entries (256 MiB)', 'TooLarge', (b) => b.writeUInt32BE(1 << 25, 36)],
    ['L1 table unaligned', 'BadTable', (b) => b.writeBigUInt64BE(BigInt(l1Off + 8), 40)],
    ['L1 table past the end of the file', 'OffsetPastEof', (b) => b.writeBigUInt64BE(BigInt(1 << 30), 40)],
    ['L1 offset above 2^52', 'TooLarge', (b) => b.writeBigUInt64BE(1n << 60n, 40)],
    ['L1 overlaps the refcount table', 'BadTable', (b) => b.writeBigUInt64BE(BigInt(rtOff), 40)],
    ['L1 in the header cluster', 'BadTable', (b) => b.writeBigUInt64BE(0n, 40)],
    ['no refcount table', 'BadTable', (b) => b.writeUInt32BE(0, 56)],
    ['refcount table of 2^20 clusters', 'TooLarge', (b) => b.writeUInt32BE(1 << 20, 56)],
    ['virtual size 2^55', 'TooLarge', (b) => b.writeBigUInt64BE(1n << 55n, 24)],
    ['virtual size beyond what the L1 table maps', 'BadTable', (b) => b.writeBigUInt64BE(1n << 40n, 24)],
    [
      'backing name too long',
      'Backing',
      (b) => {
        b.writeBigUInt64BE(2048n, 8);
        b.writeUInt32BE(1500, 16);
      },
    ],
    [
      'backing name past the first cluster',
      'Backing',
      (b) => {
        b.writeBigUInt64BE(BigInt(CS - 10), 8);
        b.writeUInt32BE(100, 16);
      },
    ],
    [
      'backing offset inside the header',
      'BadHeader',
      (b) => {
        b.writeBigUInt64BE(16n, 8);
        b.writeUInt32BE(4, 16);
      },
    ],
    ['backing size without offset', 'BadHeader', (b) => b.writeUInt32BE(10, 16)],
    [
      'backing name set (not allowed)',
      'Backing',
      (b) => {
        b.writeBigUInt64BE(3000n, 8);
        b.writeUInt32BE(5, 16);
        b.write('other', 3000);
      },
    ],
    [
      'header extension running past the cluster',
      'BadHeader',
      (b) => {
        b.writeUInt32BE(0x12345678, 112);
        b.writeUInt32BE(CS, 116);
      },
    ],
    [
      'duplicate header extension',
      'BadHeader',
      (b) => {
        const at = 112 + 8 + 4 * 48; // after our feature-name table: the end marker
        b.writeUInt32BE(0x6803f857, at);
        b.writeUInt32BE(0, at + 4);
      },
    ],
    ['snapshot count above 65536', 'TooLarge', (b) => b.writeUInt32BE(70000, 60)],
    [
      'L1 entry with reserved bits',
      'BadEntry',
      (b) => b.writeBigUInt64BE(BigInt(l2Off) | 0x8000000000000001n | (1n << 57n), l1Off),
    ],
    ['L1 entry unaligned', 'BadEntry', (b) => b.writeBigUInt64BE(BigInt(l2Off + 512) | (1n << 63n), l1Off)],
    ['L1 entry past the end of the file', 'OffsetPastEof', (b) => b.writeBigUInt64BE((1n << 40n) | (1n << 63n), l1Off)],
    ['L2 entry past the end of the file', 'OffsetPastEof', (b) => b.writeBigUInt64BE((1n << 40n) | (1n << 63n), l2Off)],
    ['L2 entry with reserved bits', 'BadEntry', (b) => b.writeBigUInt64BE(b.readBigUInt64BE(l2Off) | 2n, l2Off)],
    ['L2 entry unaligned', 'BadEntry', (b) => b.writeBigUInt64BE(b.readBigUInt64BE(l2Off) + 512n, l2Off)],
    ['compressed L2 entry into the header', 'BadEntry', (b) => b.writeBigUInt64BE((1n << 62n) | 100n, l2Off + 8)],
    ['compressed L2 entry with the copied flag', 'BadEntry', (b) => b.writeBigUInt64BE((3n << 62n) | 8192n, l2Off + 8)],
    ['refcount table entry unaligned', 'BadEntry', (b) => b.writeBigUInt64BE(b.readBigUInt64BE(rtOff) + 512n, rtOff)],
  ];
  for (const [name, kind, edit] of cases) {
    it(`rejects: ${name} (${kind})`, async () => {
      await expectKind(mutated(edit), kind, name.startsWith('refcount table entry') ? false : true);
    });
  }

  it('an unallocated L2 entry with the copied flag is malformed', async () => {
    await expectKind(
      mutated((b) => b.writeBigUInt64BE(1n << 63n, l2Off + 8)),
      'BadEntry',
    );
  });

  it('refuses read-write on a corrupt-marked image, reads it read-only', async () => {
    const p = mutated((b) => b.writeBigUInt64BE(1n << 1n, 72));
    await expectKind(p, 'CorruptImage', false);
    expect(await tryAll(p, true)).to.equal(undefined);
  });

  it('a guest write landing on metadata is refused and marks the image corrupt', async () => {
    // Point guest cluster 0 at the L1 table's cluster.
    const p = mutated((b) => b.writeBigUInt64BE(BigInt(l1Off) | (1n << 63n), l2Off));
    const img = await openQcow2({ path: p, readOnly: false });
    const e = await img.write(0n, [new Uint8Array(512).fill(1)]).then(
      () => undefined,
      (x: unknown) => x,
    );
    await img.close().catch(() => undefined);
    expect((e as QcowError).kind).to.equal('MetadataOverlap');
    expect(readFileSync(p).readBigUInt64BE(l1Off)).to.equal(base.readBigUInt64BE(l1Off)); // L1 intact
    await expectKind(p, 'CorruptImage', false);
  });

  it('compressed cluster that inflates past one cluster (bomb) is refused', async () => {
    const p = mutated((b) => {
      const vc = 20;
      const entry = b.readBigUInt64BE(l2Off + vc * 8);
      const off = Number(entry & ((1n << 62n) - 1n) & ((1n << BigInt(62 - (12 - 8))) - 1n));
      const bomb = deflateRawSync(Buffer.alloc(64 * CS));
      bomb.copy(b, off);
    });
    await expectKind(p, 'Decompression');
  });

  it('compressed cluster that inflates short is refused', async () => {
    const p = mutated((b) => {
      const entry = b.readBigUInt64BE(l2Off + 20 * 8);
      const off = Number(entry & ((1n << 54n) - 1n));
      deflateRawSync(Buffer.alloc(100, 1)).copy(b, off);
    });
    await expectKind(p, 'Decompression');
  });

  it('property: random corruption of header, tables and data only ever yields a QcowError', async () => {
    const hot = [0, l1Off, rtOff, l2Off, Number(base.readBigUInt64BE(rtOff))];
    const where = fc.oneof(
      fc.integer({ min: 0, max: 127 }),
      fc.tuple(fc.constantFrom(...hot), fc.integer({ min: 0, max: 511 })).map(([a, b]) => a + b),
      fc.integer({ min: 0, max: base.length - 1 }),
    );
    const mutation = fc.record({ at: where, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) });
    let failures = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), async (muts, rw) => {
        const p = mutated((b) => {
          for (const m of muts) b.set(m.bytes.subarray(0, Math.max(0, b.length - m.at)), m.at);
        });
        const e = await tryAll(p, !rw);
        if (e !== undefined) {
          failures++;
          if (!(e instanceof QcowError)) throw e;
        }
      }),
      { numRuns: 400 },
    );
    expect(failures).to.be.greaterThan(0); // the generator does reach the checks
  });
});
