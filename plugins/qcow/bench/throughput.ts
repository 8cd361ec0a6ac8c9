/**
 * Throughput of the qcow2 backend against a plain raw file on the same workload
 * (same machine, same page cache): sequential write into a fresh image (allocating),
 * sequential overwrite, sequential read, and random 4 KiB reads/writes at queue depth 8.
 * Usage: node .build/<you>/plugins/qcow/bench/throughput.js [sizeMiB=256] [dir=/tmp]
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createQcow2 } from '../create.js';
import { openQcow2 } from '../open.js';

interface Disk {
  read(off: number, b: Uint8Array): Promise<void>;
  write(off: number, b: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

async function rawDisk(path: string, size: number): Promise<Disk> {
  const fh = await open(path, 'w+');
  await fh.truncate(size);
  return {
    read: async (o, b) => void (await fh.read(b, 0, b.length, o)),
    write: async (o, b) => void (await fh.write(b, 0, b.length, o)),
    flush: () => fh.datasync(),
    close: () => fh.close(),
  };
}

async function qcowDisk(path: string, size: number): Promise<Disk> {
  await createQcow2({ path, size, clusterSize: 65536 });
  const img = await openQcow2({ path, readOnly: false });
  return {
    read: (o, b) => img.read(BigInt(o), [b]),
    write: (o, b) => img.write(BigInt(o), [b]),
    flush: () => img.flush(),
    close: () => img.close(),
  };
}

async function timed(bytes: number, fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return bytes / 2 ** 20 / s;
}

async function workload(d: Disk, size: number): Promise<Record<string, number>> {
  const big = new Uint8Array(1 << 20).fill(0x5a);
  const small = new Uint8Array(4096).fill(0xa5);
  const seq = async (op: 'read' | 'write'): Promise<void> => {
    for (let o = 0; o < size; o += big.length) await d[op](o, big);
    if (op === 'write') await d.flush();
  };
  let x = 12345;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) % (size / 4096)) * 4096;
  };
  const randomOps = 20000;
  const random = async (op: 'read' | 'write'): Promise<void> => {
    let left = randomOps;
    const worker = async (): Promise<void> => {
      const buf = new Uint8Array(4096);
      buf.set(small);
      while (left-- > 0) await d[op](rnd(), buf);
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  };
  return {
    'seq write (alloc) MiB/s': await timed(size, () => seq('write')),
    'seq overwrite MiB/s': await timed(size, () => seq('write')),
    'seq read MiB/s': await timed(size, () => seq('read')),
    'rand 4k write qd8 MiB/s': await timed(randomOps * 4096, () => random('write')),
    'rand 4k read qd8 MiB/s': await timed(randomOps * 4096, () => random('read')),
  };
}

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 256) * 2 ** 20;
  const dir = process.argv[3] ?? '/tmp';
  const rows: Record<string, Record<string, number>> = {};
  for (const [name, make] of [
    ['raw', rawDisk],
    ['qcow2', qcowDisk],
  ] as const) {
    const p = join(dir, `qcow-bench-${process.pid}.${name}`);
    const d = await make(p, size);
    try {
      rows[name] = await workload(d, size);
    } finally {
      await d.close();
      await rm(p, { force: true });
    }
  }
  const keys = Object.keys(rows.raw!);
  process.stdout.write(`size ${size / 2 ** 20} MiB, 64 KiB clusters\n`);
  process.stdout.write(`${'workload'.padEnd(26)} ${'raw'.padStart(9)} ${'qcow2'.padStart(9)} ${'ratio'.padStart(7)}\n`);
  for (const k of keys) {
    const r = rows.raw![k]!;
    const q = rows.qcow2![k]!;
    process.stdout.write(
      `${k.padEnd(26)} ${r.toFixed(1).padStart(9)} ${q.toFixed(1).padStart(9)} ${(q / r).toFixed(2).padStart(7)}\n`,
    );
  }
}

await main();
