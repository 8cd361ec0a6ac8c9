import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { MEMORY_FS_INLINE_READ_MAX } from '../../core/block/memory-fs.js';
import { HostFile } from './host-file.js';
import { LossyFile } from './lossy-file.js';
import { openQcow2 } from './open.js';
import { QEMU_MISSING, hasQemuImg, qemuImg, qemuIo, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** Cuts `len` bytes into buffers of odd sizes (a guest's scatter-gather list), each a view of its own memory. */
function scattered(len: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 0, k = 0; p < len; k++) {
    const n = Math.min(len - p, [512, 3584, 4096, 1536, 8192][k % 5]!);
    out.push(new Uint8Array(new ArrayBuffer(n + 64), 32, n).fill(0xee));
    p += n;
  }
  return out;
}

/** The read paths: scatter-gather without a bounce buffer; images on tmpfs read on the calling thread. */
describe('qcow: read paths', () => {
  const t = tempDir();
  const shm = mkdtempSync('/dev/shm/qcow-test-');
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  after(() => {
    t.cleanup();
    rmSync(shm, { recursive: true, force: true });
  });

  it('scatter-gather reads: one preadv into the buffers for a contiguous run, the same bytes as a flat read', async () => {
    const f = t.path('sg.qcow2');
    expect(qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', f, '4M']).status).to.equal(0);
    qemuIo(f, ['write -P 0x11 0 256k', 'write -z 256k 64k', 'write -P 0x22 1M 8k', 'write -P 0x33 1032k 4k']);
    const file = new LossyFile(readFileSync(f));
    const calls = { read: 0, readv: 0 };
    const counted = new Proxy(file.asPositioned(), {
      get(target, k: string) {
        const v = (target as unknown as Record<string, unknown>)[k];
        if (k in calls) calls[k as keyof typeof calls]++;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const img = await openQcow2({
      path: 'sg.qcow2',
      readOnly: true,
      openFile: async () => HostFile.over(counted, 'sg.qcow2', true, file.current().length),
    });
    // [offset, length, expected reads+readvs]: contiguous data, zeros, unallocated, then mixed (flat path).
    const cases: Array<[number, number, { read: number; readv: number }]> = [
      [512, 200 * 1024, { read: 0, readv: 1 }],
      [256 * 1024, 64 * 1024, { read: 0, readv: 0 }],
      [2 << 20, 128 * 1024, { read: 0, readv: 0 }],
      [200 * 1024, 128 * 1024, { read: 1, readv: 0 }],
      [1 << 20, 16 * 1024, { read: 1, readv: 0 }],
    ];
    for (const [off, len, want] of cases) {
      const flat = new Uint8Array(len);
      await img.readAt(off, flat);
      const bufs = scattered(len);
      calls.read = calls.readv = 0;
      await img.read(BigInt(off), bufs);
      expect(calls, `file calls for ${off}+${len}`).to.deep.equal(want);
      const got = new Uint8Array(len);
      let p = 0;
      for (const b of bufs) {
        got.set(b, p);
        p += b.length;
      }
      expect(Buffer.compare(got, flat), `bytes at ${off}+${len}`).to.equal(0);
    }
    await img.close();
  });

  it('reads small and large ranges inline or through the pool with the bytes qemu-io wrote', async () => {
    const f = join(shm, 'a.qcow2');
    expect(qemuImg(['create', '-q', '-f', 'qcow2', f, '4M']).status).to.equal(0);
    qemuIo(f, ['write -P 0x5a 65536 4096', 'write -P 0xa5 1M 512k']);
    const img = await openQcow2({ path: f, readOnly: true });
    try {
      expect(img.file.inMemory).to.equal(true);
      const small = new Uint8Array(8192);
      await img.read(61440n, [small]);
      expect([small[0], small[4095], small[4096], small[8191]]).to.deep.equal([0, 0, 0x5a, 0x5a]);
      const large = new Uint8Array(1 << 20);
      await img.read(BigInt(1 << 20) - 262144n, [large]);
      expect([large[262143], large[262144], large[786431], large[786432]]).to.deep.equal([0, 0xa5, 0xa5, 0]);
      // A guest's scatter-gather read of one contiguous run: one preadv on this thread, not the pool.
      const inline = img.file.inlineReads;
      const pages = scattered(512 * 1024);
      await img.read(BigInt(1 << 20), pages);
      expect(img.file.inlineReads - inline, 'inline preadv calls').to.equal(1);
      expect(pages.every((b) => b.every((v) => v === 0xa5))).to.equal(true);
    } finally {
      await img.close();
    }
    // Over MEMORY_FS_INLINE_READ_MAX: the pool reads it (same bytes, no inline call).
    const h = join(shm, 'c.qcow2');
    expect(qemuImg(['create', '-q', '-f', 'qcow2', h, '8M']).status).to.equal(0);
    qemuIo(h, ['write -P 0x3c 0 4M']);
    const wide = await openQcow2({ path: h, readOnly: true });
    try {
      await wide.read(0n, [new Uint8Array(512)]); // loads the L2 table (a metadata read)
      const before = wide.file.inlineReads;
      const pages = scattered(MEMORY_FS_INLINE_READ_MAX + 65536);
      await wide.read(0n, pages);
      expect(wide.file.inlineReads - before, 'inline calls for a read over the limit').to.equal(0);
      expect(pages.every((b) => b.every((v) => v === 0x3c))).to.equal(true);
      const two = scattered(MEMORY_FS_INLINE_READ_MAX);
      await wide.read(65536n, two);
      expect(wide.file.inlineReads - before, 'inline calls for a read of the limit').to.equal(1);
      expect(two.every((b) => b.every((v) => v === 0x3c))).to.equal(true);
    } finally {
      await wide.close();
    }
    const g = t.path('b.qcow2');
    expect(qemuImg(['create', '-q', '-f', 'qcow2', g, '1M']).status).to.equal(0);
    const other = await openQcow2({ path: g, readOnly: true });
    const tmpfs = [0x01021994, 0x858458f6].includes(Number(statfsSync(t.dir).type));
    expect(other.file.inMemory, `an image in ${t.dir}`).to.equal(tmpfs);
    await other.close();
  });
});
