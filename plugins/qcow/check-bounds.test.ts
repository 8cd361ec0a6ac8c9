import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, openSync, closeSync, ftruncateSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createQcow2 } from './create.js';
import { encodeHeader } from './header.js';
import { tempDir } from './testing.js';

const here = dirname(fileURLToPath(import.meta.url));
const CS = 65536;
const L1_ENTRIES = 2 ** 21;

/**
 * A 17 MB hostile image (issue 11 item 5): a 16 MiB L1 table whose 2^21 entries all name the
 * same L2 table, whose 8192 entries all name the same data cluster. The old check kept an
 * object per visited entry (2^34 of them: 4.9 GB and a V8 abort); qemu-img needs 1.7 MB.
 */
function hostileImage(path: string): void {
  const l1At = 3;
  const l2At = l1At + (L1_ENTRIES * 8) / CS;
  const dataAt = l2At + 1;
  const file = Buffer.alloc((dataAt + 1) * CS);
  Buffer.from(
    encodeHeader({
      version: 3,
      clusterBits: 16,
      size: 2 ** 50,
      l1Size: L1_ENTRIES,
      l1TableOffset: l1At * CS,
      refcountTableOffset: CS,
      refcountTableClusters: 1,
      refcountOrder: 4,
    }),
  ).copy(file, 0);
  file.writeBigUInt64BE(BigInt(2 * CS), CS);
  for (let c = 0; c <= dataAt; c++) file.writeUInt16BE(1, 2 * CS + c * 2);
  for (let i = 0; i < L1_ENTRIES; i++) file.writeBigUInt64BE(BigInt(l2At * CS) | (1n << 63n), l1At * CS + i * 8);
  for (let j = 0; j < CS / 8; j++) file.writeBigUInt64BE(BigInt(dataAt * CS) | (1n << 63n), l2At * CS + j * 8);
  writeFileSync(path, file);
}

/** Runs `body` (an async function body with `open`, `check` and `path` in scope) in a node with a small heap. */
function inSmallHeap(
  path: string,
  body: string,
): { status: number | null; out: string; result?: Record<string, unknown> } {
  const script = `
    const { openQcow2 } = await import(${JSON.stringify(join(here, 'open.js'))});
    const { checkImage } = await import(${JSON.stringify(join(here, 'check.js'))});
    const path = ${JSON.stringify(path)};
    const result = await (async () => { ${body} })();
    console.log(JSON.stringify({ ...result, maxRssKiB: process.resourceUsage().maxRSS }));`;
  const r = spawnSync(process.execPath, ['--max-old-space-size=96', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let result: Record<string, unknown> | undefined;
  try {
    result = JSON.parse(last) as Record<string, unknown>;
  } catch {
    /* the status and output tell */
  }
  return { status: r.status, out: r.stdout + r.stderr, result };
}

describe('qcow: check stays bounded on hostile images', function () {
  this.timeout(300_000);
  const t = tempDir('vmm-bounds-');
  after(() => t.cleanup());

  it('a 17 MB image whose tables all point at one L2 table: a clear result in bounded memory', () => {
    const f = t.path('hostile.qcow2');
    hostileImage(f);
    const r = inSmallHeap(
      f,
      `
      const img = await openQcow2({ path, readOnly: true, forCheck: true, skipBacking: true });
      try { const rep = await checkImage(img); return { corruptions: rep.corruptions, leaks: rep.leaks, lines: rep.messages.length, first: rep.messages[0] }; }
      finally { await img.close(); }`,
    );
    expect(r.status, r.out.slice(-2000)).to.equal(0);
    expect(r.result!.corruptions as number).to.be.greaterThan(0);
    expect(r.result!.first).to.match(/refcount=1 reference=\d+/);
    expect(r.result!.lines as number).to.be.at.most(1001);
    expect(r.result!.maxRssKiB as number, 'peak RSS').to.be.below(300 * 1024);
  });

  it('the same image, marked dirty and opened read-write for a VM: refused with a clear error, memory bounded', () => {
    const f = t.path('dirty.qcow2');
    hostileImage(f);
    const b = readFileSync(f);
    b.writeBigUInt64BE(b.readBigUInt64BE(72) | 1n, 72); // the dirty bit
    writeFileSync(f, b);
    const r = inSmallHeap(
      f,
      `
      try { await openQcow2({ path, readOnly: false }); return { opened: true }; }
      catch (e) { return { kind: e.kind, message: e.message }; }`,
    );
    expect(r.status, r.out.slice(-2000)).to.equal(0);
    expect(r.result).to.include({ kind: 'CorruptImage' });
    expect(r.result!.message).to.match(/is dirty and its refcounts could not be repaired/);
    expect(r.result!.maxRssKiB as number, 'peak RSS').to.be.below(300 * 1024);
  });

  it('a sparse file claiming 8 TiB of 512-byte clusters is refused before any counter is allocated', async () => {
    const f = t.path('sparse.qcow2');
    await createQcow2({ path: f, size: 1 << 20, clusterSize: 512 });
    const fd = openSync(f, 'r+');
    ftruncateSync(fd, 2 ** 43);
    closeSync(fd);
    const r = inSmallHeap(
      f,
      `
      const img = await openQcow2({ path, readOnly: true, forCheck: true, skipBacking: true });
      try { await checkImage(img); return { checked: true }; }
      catch (e) { return { kind: e.kind, message: e.message }; }
      finally { await img.close(); }`,
    );
    expect(r.status, r.out.slice(-2000)).to.equal(0);
    expect(r.result).to.include({ kind: 'TooLarge' });
    expect(r.result!.message).to.match(/spans \d+ clusters of 512 bytes; check handles at most/);
  });

  it('an ordinary image still checks clean (control)', async () => {
    const f = t.path('plain.qcow2');
    await createQcow2({ path: f, size: 1 << 20 });
    copyFileSync(f, f + '.copy');
    const r = inSmallHeap(
      f,
      `
      const img = await openQcow2({ path, readOnly: true, forCheck: true });
      try { const rep = await checkImage(img); return { corruptions: rep.corruptions, leaks: rep.leaks }; } finally { await img.close(); }`,
    );
    expect(r.result).to.include({ corruptions: 0, leaks: 0 });
  });
});
