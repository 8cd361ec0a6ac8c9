/**
 * The request path of virtio-blk on the host, without a guest: a VirtioBlk over a RawFileDisk (a 64 MiB file,
 * on /dev/shm by default, as the sandbox bench keeps its images on tmpfs) on a mock split queue, driven at queue
 * depth 1 (4 KiB random reads, the bench's randread4k) and as a batch (`depth` reads per kick, the used ring
 * returned once), and 1 MiB sequential writes of 256 page buffers at queue depth 1 (the bench's seqwrite) into a
 * fresh raw file and a fresh qcow2 image (every write allocates 16 clusters). Prints µs per request from the kick
 * to the used entry. Run it with `node dist/plugins/virtio-blk/bench/request-path.js [dir] [requests]`; add
 * `--cpu-prof` to node to profile, and BLK_BENCH_ONLY=qd1|batch|large|pages|write|qcow2-write for one kind of round.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { GuestAddress } from '../../../core/address.js';
import type { DiskBackend } from '../../../core/block/disk.js';
import { createQcow2 } from '../../qcow/create.js';
import { openQcow2 } from '../../qcow/open.js';
import { RawFileDisk } from '../../raw-disk/raw-disk.js';
import { FakeEventSystem, testGuestMemory } from '../../virtio/testing.js';
import { BlkRequestType } from '../constants.js';
import { VirtioBlk } from '../device.js';
import { activateBlk, header, type ActivatedBlk } from '../testing.js';

const FILE_MIB = 64;

/**
 * Publishes `n` reads of `len` bytes at random sectors, each into its own data buffer, cut into 4 KiB page buffers
 * behind an indirect descriptor when `pages` (as Linux sends a 1 MiB O_DIRECT read of a user buffer).
 */
function publish(
  h: ActivatedBlk,
  n: number,
  len: number,
  pages: boolean,
  at: Record<string, bigint[]>,
  write: number | undefined,
): void {
  const mq = h.drivers[0]!.mq;
  for (let i = 0; i < n; i++) {
    const sector =
      write !== undefined
        ? BigInt(((write + i) * len) / 512)
        : BigInt(Math.floor(Math.random() * ((FILE_MIB << 20) / len))) * BigInt(len / 512);
    h.memory.write(
      GuestAddress.of(at.hdrs![i]!),
      header(write !== undefined ? BlkRequestType.OUT : BlkRequestType.IN, sector),
    );
    const data = at.datas![i]!;
    const w = write === undefined;
    const bufs = pages
      ? Array.from({ length: len / 4096 }, (_, k) => ({ addr: data + BigInt(k * 4096), len: 4096, write: w }))
      : [{ addr: data, len, write: w }];
    const chain = [{ addr: at.hdrs![i]!, len: 16 }, ...bufs, { addr: at.stats![i]!, len: 1, write: true }];
    if (pages) mq.addIndirectChain(chain, at.tables![i]!);
    else mq.addChain(chain);
  }
}

/** What a round writes: nothing (reads of the shared file), or sequential writes into a fresh raw or qcow2 image. */
type WriteTo = 'raw' | 'qcow2' | undefined;

async function round(
  label: string,
  file: string,
  requests: number,
  depth: number,
  len: number,
  pages = false,
  writeTo: WriteTo = undefined,
): Promise<void> {
  const events = new FakeEventSystem();
  let disk: DiskBackend;
  if (writeTo === 'qcow2') {
    file = `${file}.w.qcow2`;
    await createQcow2({ path: file, size: requests * len, clusterSize: 65536 });
    disk = await openQcow2({ path: file, readOnly: false });
  } else if (writeTo === 'raw') {
    file = `${file}.w.raw`;
    fs.writeFileSync(file, '');
    fs.truncateSync(file, requests * len);
    disk = RawFileDisk.open({ path: file, readOnly: false });
  } else disk = RawFileDisk.open({ path: file, readOnly: true });
  const dev = new VirtioBlk({ id: 'vda', disk, serial: 'bench' }, events.loop);
  const h = activateBlk(dev, events, { queueSize: 256, memory: testGuestMemory(BigInt(depth * len + (4 << 20))) });
  const mq = h.drivers[0]!.mq;
  const at = {
    hdrs: Array.from({ length: depth }, () => mq.alloc(16)),
    datas: Array.from({ length: depth }, () => mq.alloc(len)),
    stats: Array.from({ length: depth }, () => mq.alloc(1)),
    tables: Array.from({ length: depth }, () => mq.alloc(16 * (len / 4096 + 2))),
  };
  let busy = 0;
  const rounds = Math.ceil(requests / depth);
  for (let r = 0; r < rounds; r++) {
    publish(h, depth, len, pages, at, writeTo ? r * depth : undefined);
    mq.setUsedEvent(mq.usedIdx); // the driver wants an interrupt for the next completion
    const t0 = performance.now();
    h.kick(0);
    await dev.idle();
    busy += performance.now() - t0;
  }
  if (mq.usedIdx !== (rounds * depth) % 65536) throw new Error(`used ${mq.usedIdx}, want ${rounds * depth}`);
  console.log(
    `${label.padEnd(28)} ${String(rounds * depth).padStart(6)} requests  ${((busy * 1000) / (rounds * depth)).toFixed(1).padStart(7)} µs/request  interrupts ${h.interrupts.length}`,
  );
  await dev.destroy();
  if (writeTo) fs.rmSync(file);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(process.argv[2] ?? '/dev/shm', 'blk-request-path-'));
  const requests = Number(process.argv[3] ?? 5000);
  try {
    const file = path.join(dir, 'disk.img');
    fs.writeFileSync(file, Buffer.alloc(FILE_MIB << 20, 0x5a));
    const only = process.env.BLK_BENCH_ONLY; // qd1 | batch | large: one kind of round (for profiles)
    for (let k = 0; k < 3; k++) {
      if (!only || only === 'qd1') await round('4 KiB read, QD1', file, requests, 1, 4096);
      if (!only || only === 'batch') await round('4 KiB read, 32 per kick', file, requests, 32, 4096);
      if (!only || only === 'large') await round('1 MiB read, QD1', file, Math.ceil(requests / 20), 1, 1 << 20);
      if (!only || only === 'pages')
        await round('1 MiB read of 256 pages, QD1', file, Math.ceil(requests / 20), 1, 1 << 20, true);
      if (!only || only === 'write')
        await round('1 MiB write of 256 pages, raw', file, Math.ceil(requests / 20), 1, 1 << 20, true, 'raw');
      if (!only || only === 'qcow2-write')
        await round('1 MiB write of 256 pages, qcow2', file, Math.ceil(requests / 20), 1, 1 << 20, true, 'qcow2');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
