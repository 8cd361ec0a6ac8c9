/**
 * Measures the three ways a disk backend could do I/O from Node's main thread:
 *  - sync: pread/pwrite through koffi on the main thread (zero copy, blocks the loop for the call);
 *  - pool: fs.read/fs.write with positions (libuv threadpool, callback on the main loop);
 *  - uring: io_uring through liburing + koffi (submit on the main thread, reap completions).
 * For each: 4 KiB random reads (page cache, and O_DIRECT = device latency), 1 MiB sequential
 * reads and writes. "lat" is the per-op latency seen by the caller at queue depth 1; "main" is
 * the main-thread time per op during which the event loop can do nothing else (the stall):
 * for sync the whole call, for pool and uring the event-loop active time (ELU) per op.
 * Run: node .build/blk/plugins/virtio-blk/bench/io-engines.js [dir]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { addressOf, c, koffi, O_DIRECT, O_RDWR, viewOf } from '../../../core/native/libc.js';

const dir = process.argv[2] ?? '/tmp';
const FILE_MB = 64;
const file = path.join(dir, `blk-bench-${process.pid}.img`);

function aligned(len: number, align = 4096): Uint8Array {
  const ab = new Uint8Array(len + align);
  const addr = addressOf(ab);
  const skip = Number((BigInt(align) - (addr % BigInt(align))) % BigInt(align));
  return ab.subarray(skip, skip + len);
}

interface Row {
  engine: string;
  test: string;
  ops: number;
  latUs: number;
  mainUs: number;
  maxStallUs: number;
}
const rows: Row[] = [];

type Op = { write: boolean; pos: number; len: number };
function plan(test: string, n: number): Op[] {
  const size = FILE_MB << 20;
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    if (test.startsWith('4k-rand'))
      ops.push({ write: false, pos: Math.floor(Math.random() * (size / 4096)) * 4096, len: 4096 });
    else ops.push({ write: test === '1M-seq-write', pos: (i * (1 << 20)) % size, len: 1 << 20 });
  }
  return ops;
}

function benchSync(fd: number, test: string, ops: Op[], buf: Uint8Array): void {
  const addr = addressOf(buf);
  let max = 0;
  const t0 = performance.now();
  for (const op of ops) {
    const s = performance.now();
    // SAFETY: buf is alive for the whole loop; fd owned by this script.
    const r = op.write ? c.pwriteAddr(fd, addr, op.len, op.pos) : c.preadAddr(fd, addr, op.len, op.pos);
    if (Number(r) !== op.len) throw new Error(`short io ${r}`);
    max = Math.max(max, performance.now() - s);
  }
  const us = ((performance.now() - t0) * 1000) / ops.length;
  rows.push({ engine: 'sync', test, ops: ops.length, latUs: us, mainUs: us, maxStallUs: max * 1000 });
}

async function benchPool(fd: number, test: string, ops: Op[], buf: Uint8Array): Promise<void> {
  const elu0 = performance.eventLoopUtilization();
  let max = 0;
  const t0 = performance.now();
  for (const op of ops) {
    await new Promise<void>((res, rej) => {
      const s = performance.now();
      const cb = (err: Error | null, n: number): void =>
        err ? rej(err) : n !== op.len ? rej(new Error('short')) : res();
      if (op.write) fs.write(fd, buf, 0, op.len, op.pos, cb);
      else fs.read(fd, buf, 0, op.len, op.pos, cb);
      max = Math.max(max, performance.now() - s);
    });
  }
  const t = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  rows.push({
    engine: 'pool',
    test,
    ops: ops.length,
    latUs: (t * 1000) / ops.length,
    mainUs: (elu.active * 1000) / ops.length,
    maxStallUs: max * 1000,
  });
}

/** io_uring through liburing 2.x. struct io_uring is opaque except cq.khead at byte 104 (liburing 2.0-2.5 layout). */
class Uring {
  private readonly lib = koffi.load('liburing.so.2');
  private readonly ring = Buffer.alloc(512);
  private readonly init = this.lib.func(
    'int io_uring_queue_init(unsigned int entries, _Inout_ uint8_t *ring, unsigned int flags)',
  );
  private readonly getSqe = this.lib.func('uintptr_t io_uring_get_sqe(_Inout_ uint8_t *ring)');
  private readonly submitFn = this.lib.func('int io_uring_submit(_Inout_ uint8_t *ring)');
  private readonly getCqe = this.lib.func(
    'int __io_uring_get_cqe(_Inout_ uint8_t *ring, _Out_ uint64_t *cqe, unsigned int submit, unsigned int wait, uintptr_t sigmask)',
  );
  private readonly exit = this.lib.func('void io_uring_queue_exit(_Inout_ uint8_t *ring)');
  constructor() {
    const r = this.init(64, this.ring, 0);
    if (r < 0) throw new Error(`io_uring_queue_init: ${r}`);
  }
  prep(op: Op, fd: number, addr: bigint): void {
    const p = this.getSqe(this.ring) as bigint;
    if (!p) throw new Error('sq full');
    // SAFETY: the SQE is 64 bytes inside the mmapped SQ array, ours until submit.
    const sqe = new DataView(viewOf(BigInt(p), 64).buffer);
    for (let i = 0; i < 64; i += 8) sqe.setBigUint64(i, 0n);
    sqe.setUint8(0, op.write ? 23 : 22); // IORING_OP_WRITE / IORING_OP_READ
    sqe.setInt32(4, fd, true);
    sqe.setBigUint64(8, BigInt(op.pos), true);
    sqe.setBigUint64(16, addr, true);
    sqe.setUint32(24, op.len, true);
  }
  submit(): number {
    return this.submitFn(this.ring);
  }
  /** Waits for one completion, returns its result and marks it seen. */
  reap(wait: boolean): number | undefined {
    const out = new BigUint64Array(1);
    const r = this.getCqe(this.ring, out, 0, wait ? 1 : 0, 0n);
    if (r < 0 || out[0] === 0n) return undefined;
    const res = new DataView(viewOf(out[0], 16).buffer).getInt32(8, true);
    // io_uring_cqe_seen: *cq.khead += 1 (x86 stores are release).
    const khead = new DataView(this.ring.buffer, this.ring.byteOffset + 104, 8).getBigUint64(0, true);
    const hv = new DataView(viewOf(khead, 4).buffer);
    hv.setUint32(0, hv.getUint32(0, true) + 1, true);
    return res;
  }
  close(): void {
    this.exit(this.ring);
  }
}

function benchUring(u: Uring, fd: number, test: string, ops: Op[], buf: Uint8Array): void {
  const addr = addressOf(buf);
  let main = 0,
    max = 0;
  const t0 = performance.now();
  for (const op of ops) {
    let s = performance.now();
    u.prep(op, fd, addr);
    u.submit();
    let busy = performance.now() - s;
    // In a device this wait is idle time in epoll on the ring's eventfd; not main-thread work.
    s = performance.now();
    let res = u.reap(false);
    busy += performance.now() - s;
    if (res === undefined) res = u.reap(true); // waiting: not counted
    s = performance.now();
    if (res !== op.len) throw new Error(`uring res ${res}`);
    busy += performance.now() - s;
    main += busy;
    max = Math.max(max, busy);
  }
  const t = performance.now() - t0;
  rows.push({
    engine: 'uring',
    test,
    ops: ops.length,
    latUs: (t * 1000) / ops.length,
    mainUs: (main * 1000) / ops.length,
    maxStallUs: max * 1000,
  });
}

async function main(): Promise<void> {
  fs.writeFileSync(file, Buffer.alloc(FILE_MB << 20, 0xab));
  const fd = fs.openSync(file, 'r+');
  const dfd = c.open(file, O_RDWR | O_DIRECT, 0);
  const buf = aligned(1 << 20);
  let uring: Uring | undefined;
  try {
    uring = new Uring();
  } catch (e) {
    console.error('io_uring unavailable:', (e as Error).message);
  }
  try {
    const tests: [string, number][] = [
      ['4k-rand-read', 3000],
      ['4k-rand-read-odirect', 600],
      ['1M-seq-read', 64],
      ['1M-seq-write', 64],
    ];
    for (const [test, n] of tests) {
      const f = test.endsWith('odirect') ? dfd : fd;
      if (f < 0) continue;
      const ops = plan(test, n);
      benchSync(f, test, ops, buf);
      await benchPool(f, test, ops, buf);
      if (uring) benchUring(uring, f, test, ops, buf);
    }
  } finally {
    uring?.close();
    fs.closeSync(fd);
    if (dfd >= 0) c.close(dfd);
    fs.rmSync(file, { force: true });
  }
  console.log('| engine | test | ops | latency µs/op | main-thread µs/op | longest stall µs |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.engine} | ${r.test} | ${r.ops} | ${r.latUs.toFixed(1)} | ${r.mainUs.toFixed(1)} | ${r.maxStallUs.toFixed(0)} |`,
    );
}

await main();
