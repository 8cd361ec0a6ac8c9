import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { checkImage } from './check.js';
import { createQcow2, type CreateOptions } from './create.js';
import { stampSector, verifySector } from './crash-writer.js';
import { HostFile } from './host-file.js';
import type { Qcow2Image } from './image.js';
import { LossyFile } from './lossy-file.js';
import { openQcow2 } from './open.js';
import { hasQemuImg, qemuCheck, QEMU_MISSING, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** xorshift32: the same workload for a seed on every run. */
function rng(seed: number): (n: number) => number {
  let x = seed | 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const openOver = (file: LossyFile, size: number, readOnly = false): Promise<Qcow2Image> =>
  openQcow2({
    path: 'lossy.qcow2',
    readOnly,
    openFile: async () => HostFile.over(file.asPositioned(), 'lossy.qcow2', readOnly, size),
  });

/**
 * What each sector may read as after a crash: what it could hold at the last completed flush, or anything written
 * since (0: zeros, from write-zeroes or never written). A discard is advisory (only whole clusters are dropped), so
 * after one a sector may hold its old contents or zeros.
 */
class Model {
  /** What each sector may hold now. */
  private now: Array<Set<number>>;
  private durable: Array<Set<number>>;
  private since: Array<Set<number> | undefined>;
  constructor(readonly sectors: number) {
    this.now = Array.from({ length: sectors }, () => new Set([0]));
    this.durable = this.now;
    this.since = new Array<Set<number> | undefined>(sectors);
  }
  private note(s: number, gen: number, replaces: boolean): void {
    if (this.now === this.durable) this.now = this.now.slice();
    this.now[s] = replaces ? new Set([gen]) : new Set([...this.now[s]!, gen]);
    (this.since[s] ??= new Set()).add(gen);
  }
  /** A write of generation `gen` (0: write-zeroes) to sector `s`. */
  set(s: number, gen: number): void {
    this.note(s, gen, true);
  }
  /** A discard that covered sector `s`. */
  discarded(s: number): void {
    this.note(s, 0, false);
  }
  flushed(): void {
    this.durable = this.now;
    this.since = new Array<Set<number> | undefined>(this.sectors);
  }
  /** What each sector may read as after a crash now. */
  allowed(): Array<Set<number>> {
    return this.durable.map((d, s) => (this.since[s] ? new Set([...d, ...this.since[s]!]) : d));
  }
}

/** The generation a sector holds (0 for zeros), or a description of what is wrong with it. */
function genOf(buf: Uint8Array, s: number): number | string {
  const why = verifySector(buf, s);
  if (why) return why;
  if (buf.every((b) => b === 0)) return 0;
  return new DataView(buf.buffer, buf.byteOffset, 512).getUint32(8);
}

/**
 * A crash between FLUSHes (power cut with random sectors of the page cache lost, or a process kill that keeps it):
 * qemu-img check finds no corruption (leaks allowed) and every sector holds what it had at the last completed
 * flush or something written after it: nothing acknowledged before the last FLUSH is lost, nothing points at
 * unwritten or foreign data.
 */
describe('qcow: crash between flushes (lost page cache, process kill)', function () {
  this.timeout(120_000);
  const t = tempDir();
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  after(() => t.cleanup());

  const cases: Array<Omit<CreateOptions, 'path'> & { seed: number }> = [
    { size: 1 << 20, clusterSize: 4096, refcountBits: 16, seed: 11 },
    { size: 1 << 20, clusterSize: 512, refcountBits: 64, seed: 12 },
    { size: 2 << 20, clusterSize: 65536, refcountBits: 16, version: 2, seed: 13 },
    { size: 2 << 20, clusterSize: 4096, refcountBits: 1, seed: 14 },
  ];
  for (const [n, c] of cases.entries()) {
    it(`cluster ${c.clusterSize}, refcount ${c.refcountBits}, v${c.version ?? 3}`, async () => {
      const made = t.path(`made${n}.qcow2`);
      await createQcow2({ path: made, ...c });
      const file = new LossyFile(readFileSync(made));
      const img = await openOver(file, file.current().length);
      const rand = rng(c.seed);
      const sectors = img.virtualSize / 512;
      const model = new Model(sectors);
      const crashes: Array<{ bytes: Uint8Array; kind: string; at: number; allowed: Array<Set<number>> }> = [];
      let gen = 1;
      let flushes = 0;
      const syncsBefore = file.syncs;
      for (let op = 0; op < 600; op++) {
        const k = rand(100);
        const first = rand(sectors);
        const len = Math.min(sectors - first, 1 + rand(40));
        if (k < 70) {
          const buf = new Uint8Array(len * 512);
          gen++;
          for (let s = 0; s < len; s++) {
            stampSector(buf.subarray(s * 512, s * 512 + 512), first + s, gen);
            model.set(first + s, gen);
          }
          await img.write(BigInt(first * 512), [buf]);
        } else if (k < 82) {
          await img.discard(BigInt(first * 512), BigInt(len * 512));
          for (let s = 0; s < len; s++) model.discarded(first + s);
        } else if (k < 92) {
          await img.writeZeroes(BigInt(first * 512), BigInt(len * 512), rand(2) === 0);
          for (let s = 0; s < len; s++) model.set(first + s, 0);
        } else {
          await img.flush();
          model.flushed();
          flushes++;
        }
        if (op % 75 === 74) {
          const allowed = model.allowed();
          crashes.push({ bytes: file.crash(rand), kind: 'power cut', at: op, allowed });
          crashes.push({ bytes: file.current(), kind: 'process kill', at: op, allowed });
        }
      }
      // The durability point is the flush: no more syncs than the flushes' write-back steps (3 each at most).
      expect(file.syncs - syncsBefore).to.be.at.most(3 * flushes);

      for (const [i, cr] of crashes.entries()) {
        const where = `${cr.kind} after op ${cr.at}`;
        const path = t.path(`crash${n}-${i}.qcow2`);
        writeFileSync(path, cr.bytes);
        const q = qemuCheck(path);
        expect(q.corruptions, `${where}: ${q.raw}`).to.equal(0);
        expect(q.status, `${where}: ${q.raw}`).to.be.oneOf([0, 3]);
        const back = new LossyFile(cr.bytes);
        const ro = await openOver(back, cr.bytes.length, true);
        const ours = await checkImage(ro);
        expect(ours.corruptions, `${where}: ${ours.messages.slice(0, 3).join('; ')}`).to.equal(0);
        const all = new Uint8Array(ro.virtualSize);
        await ro.read(0n, [all]);
        await ro.close();
        const bad: string[] = [];
        for (let s = 0; s < sectors && bad.length < 5; s++) {
          const g = genOf(all.subarray(s * 512, s * 512 + 512), s);
          if (typeof g === 'string') bad.push(g);
          else if (!cr.allowed[s]!.has(g)) bad.push(`sector ${s}: generation ${g}, may be [${[...cr.allowed[s]!]}]`);
        }
        expect(bad, where).to.deep.equal([]);
      }
    });
  }
});
