import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkImage } from '../../plugins/qcow/check.js';
import { createQcow2 } from '../../plugins/qcow/create.js';
import { HostFile } from '../../plugins/qcow/host-file.js';
import { QcowError } from '../../plugins/qcow/errors.js';
import { openQcow2 } from '../../plugins/qcow/open.js';
import { fillRandom } from '../../plugins/qcow/testing.js';
import {
  Outcomes,
  expectOnlyAsync,
  fuzzParams,
  fuzzRuns,
  fuzzTimeout,
  fuzzTitle,
  reportOutcomes,
  rssMiB,
  sometimes,
} from './support.js';
import { MemoryFile } from './memory-file.js';

/** A base image and the offsets of its metadata (where mutations are aimed). */
interface Base {
  name: string;
  bytes: Buffer;
  hot: number[];
  cs: number;
  size: number;
}

async function makeBase(
  dir: string,
  name: string,
  o: { cs: number; refcountBits: number; version: 2 | 3 },
): Promise<Base> {
  const path = join(dir, `${name}.qcow2`);
  const size = 24 * o.cs + 1536;
  await createQcow2({ path, size, clusterSize: o.cs, refcountBits: o.refcountBits, version: o.version });
  const img = await openQcow2({ path, readOnly: false });
  await img.write(0n, [fillRandom(new Uint8Array(3 * o.cs + 100), 1)]);
  await img.write(BigInt(10 * o.cs), [fillRandom(new Uint8Array(o.cs), 2)]);
  await img.writeCompressed(12, new Uint8Array(o.cs).fill(0x61));
  if (o.version === 3) await img.writeZeroes(BigInt(16 * o.cs), BigInt(2 * o.cs), false);
  await img.close();
  const bytes = readFileSync(path);
  const l1 = Number(bytes.readBigUInt64BE(40)),
    rt = Number(bytes.readBigUInt64BE(48));
  const l2 = Number(bytes.readBigUInt64BE(l1) & 0x00ff_ffff_ffff_fe00n);
  const rb = Number(bytes.readBigUInt64BE(rt));
  return { name, bytes, hot: [0, 24, 32, 40, 48, 56, 72, 96, 100, l1, rt, l2, l2 + 8 * 12, rb], cs: o.cs, size };
}

describe('fuzz: qcow2 open, read, write, check', function () {
  this.timeout(fuzzTimeout(3));
  const dir = mkdtempSync(join('/dev/shm', 'tsvmm-fuzz-qcow-'));
  const bases: Base[] = [];
  before(async () => {
    bases.push(await makeBase(dir, 'v3-512-16', { cs: 512, refcountBits: 16, version: 3 }));
    bases.push(await makeBase(dir, 'v3-4k-1', { cs: 4096, refcountBits: 1, version: 3 }));
    bases.push(await makeBase(dir, 'v2-4k-16', { cs: 4096, refcountBits: 16, version: 2 }));
    bases.push(await makeBase(dir, 'v3-1k-64', { cs: 1024, refcountBits: 64, version: 3 }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const mutation = fc.record({
    hot: fc.nat(),
    delta: fc.integer({ min: 0, max: 15 }),
    far: fc.nat(),
    aimed: fc.boolean(),
    value: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
      fc.constantFrom(
        Uint8Array.of(0xff, 0xff, 0xff, 0xff),
        Uint8Array.of(0x80),
        Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0),
        Uint8Array.of(0x40),
        Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 0),
      ),
    ),
  });
  const hostileCase = fc.record({
    base: fc.nat(),
    muts: fc.array(mutation, { minLength: 0, maxLength: 4 }),
    truncate: sometimes(fc.nat(), 8),
    rw: fc.boolean(),
    writes: fc.array(
      fc.record({
        at: fc.nat(),
        len: fc.integer({ min: 1, max: 3000 }),
        op: fc.constantFrom('write', 'zero', 'discard'),
      }),
      { maxLength: 3 },
    ),
  });

  /**
   * Each case opens its mutated image from memory (MemoryFile through openQcow2's openFile): the same
   * parsing, checks, allocation and refcount code as on a host file, without a dozen thread-pool round
   * trips per case (qemu-read/qemu-write tests and qcow.linux cover the real file paths).
   */
  type HostileCase = typeof hostileCase extends fc.Arbitrary<infer T> ? T : never;
  const runs = fuzzRuns();

  it(
    fuzzTitle('mutated images: only QcowError escapes open, read of the whole disk, writes, flush and check', runs),
    async () => {
      const outcomes = new Outcomes();
      const rssBefore = rssMiB();
      let cases = 0;
      const one = async (c: HostileCase): Promise<void> => {
        const base = bases[c.base % bases.length];
        const b = Buffer.from(base.bytes);
        for (const m of c.muts) {
          const at = m.aimed ? base.hot[m.hot % base.hot.length] + ((m.delta * 8) % 64) : m.far % b.length;
          b.set(m.value.subarray(0, Math.max(0, b.length - at)), Math.min(at, b.length));
        }
        const bytes = c.truncate === undefined ? b : b.subarray(0, c.truncate % b.length);
        const openFile = async (path: string, readOnly: boolean) =>
          HostFile.over(new MemoryFile(bytes).asPositioned(), path, readOnly, bytes.length);
        const err = await expectOnlyAsync([QcowError], async () => {
          const img = await openQcow2({ path: `${base.name}.qcow2`, readOnly: !c.rw, openFile });
          try {
            const all = new Uint8Array(Math.min(img.virtualSize, 64 * base.cs));
            await img.read(0n, [all]);
            if (c.rw) {
              for (const w of c.writes) {
                const at = BigInt(w.at % Math.max(1, img.virtualSize - w.len));
                if (w.op === 'write')
                  await img.write(at, [new Uint8Array(Math.min(w.len, img.virtualSize)).fill(0x77)]);
                else if (w.op === 'zero') await img.writeZeroes(at, BigInt(w.len), true);
                else await img.discard(at, BigInt(w.len));
              }
              await img.flush();
            }
            const report = await checkImage(img);
            outcomes.add(
              report.corruptions > 0 ? 'check: corruptions' : report.leaks > 0 ? 'check: leaks' : 'check: clean',
            );
          } finally {
            await img.close().catch(() => undefined);
          }
        });
        if (err) outcomes.add((err as QcowError).kind);
        cases++;
      };
      await fc.assert(fc.asyncProperty(hostileCase, one), fuzzParams({ timeout: 10_000 }));
      reportOutcomes('qcow2', outcomes, ['check: clean', 'BadEntry'], 6);
      expect(cases, 'cases run').to.be.at.least(runs);
      expect(rssMiB() - rssBefore, 'resident memory growth (MiB)').to.be.below(512);
    },
  );
});
