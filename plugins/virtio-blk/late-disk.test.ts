import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DiskBackend, DiskFormat } from '../../core/block/disk.js';
import { RawDiskFormat } from '../raw-disk/raw-format.js';
import { Qcow2Format } from '../qcow/format.js';
import { createQcow2 } from '../qcow/create.js';
import { LateDisk } from './late-disk.js';

const MiB = 1 << 20;

describe("virtio-blk LateDisk: a disk described now and opened once a migration's source let go of it", () => {
  const formats: DiskFormat[] = [new RawDiskFormat(), new Qcow2Format()];
  let dir: string;
  const held: DiskBackend[] = [];
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'late-disk-'))));
  afterEach(async () => {
    for (const d of held.splice(0)) await d.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const keep = <T extends DiskBackend>(d: T): T => (held.push(d), d);

  it('describes a raw image another process holds locked, refuses I/O until opened, then reads and writes it', async () => {
    const file = path.join(dir, 'disk.raw');
    fs.writeFileSync(file, Buffer.alloc(4 * MiB, 0x5a));
    const source = keep(await formats[0]!.open({ path: file, readOnly: false }));
    const late = keep(await LateDisk.describe(formats, 'auto', { path: file, readOnly: false }));
    expect(late.size).to.equal(BigInt(4 * MiB));
    expect([late.readOnly, late.blockSize, late.supportsDiscard, late.opened]).to.deep.equal([false, 512, true, false]);
    const buf = new Uint8Array(512);
    let err = await late.read(0n, [buf]).catch((e: unknown) => e);
    expect(String(err)).to.match(/not opened yet/);
    await late.flush(); // nothing written through it: nothing to flush
    // the source still holds the image: opening it fails on the lock, and it can be tried again
    err = await late.open().catch((e: unknown) => e);
    expect(String(err)).to.match(/lock/i);
    expect(late.opened).to.equal(false);
    await source.close();
    await late.open();
    expect(late.opened).to.equal(true);
    await late.read(0n, [buf]);
    expect(buf.every((b) => b === 0x5a)).to.equal(true);
    await late.write(512n, [new Uint8Array(512).fill(7)]);
    await late.flush();
    expect(fs.readFileSync(file)[512]).to.equal(7);
    // now it holds the lock itself
    err = await formats[0]!.open({ path: file, readOnly: false }).catch((e: unknown) => e);
    expect(String(err)).to.match(/lock/i);
  });

  it('describes a qcow2 image by its header without its lock; opened, it is the same image', async () => {
    const file = path.join(dir, 'disk.qcow2');
    await createQcow2({ path: file, size: 64 * MiB });
    const source = keep(await formats[1]!.open({ path: file, readOnly: false }));
    await source.write(BigInt(MiB), [new Uint8Array(4096).fill(0xab)]);
    await source.flush();
    const late = keep(await LateDisk.describe(formats, 'auto', { path: file, readOnly: false }));
    expect(late.size).to.equal(BigInt(64 * MiB));
    expect([late.blockSize, late.supportsDiscard, late.supportsWriteZeroes]).to.deep.equal([512, true, true]);
    await source.close();
    await late.open();
    const buf = new Uint8Array(4096);
    await late.read(BigInt(MiB), [buf]);
    expect(buf.every((b) => b === 0xab)).to.equal(true);
  });

  it('refuses an image whose shape changed since it was described, and holds nothing then', async () => {
    const file = path.join(dir, 'disk.raw');
    fs.writeFileSync(file, Buffer.alloc(2 * MiB));
    const late = keep(await LateDisk.describe(formats, 'raw', { path: file, readOnly: false }));
    fs.truncateSync(file, 3 * MiB);
    const err = await late.open().catch((e: unknown) => e);
    expect(String(err)).to.match(/changed since the device was built \(size 2097152 -> 3145728\)/);
    expect(late.opened).to.equal(false);
    // the image it opened to compare is closed again: another open takes the lock
    keep(await formats[0]!.open({ path: file, readOnly: false }));
  });

  it('refuses a format that cannot describe an image, naming it', async () => {
    const file = path.join(dir, 'disk.img');
    fs.writeFileSync(file, Buffer.alloc(MiB));
    const opaque: DiskFormat = { name: 'opaque', probe: () => false, open: (o) => formats[0]!.open(o) };
    const err = await LateDisk.describe([opaque], 'opaque', { path: file, readOnly: false }).catch((e: unknown) => e);
    expect(String(err)).to.match(/the opaque format cannot describe an image before opening it/);
  });

  it('closed before it was opened, it never opens', async () => {
    const file = path.join(dir, 'disk.raw');
    fs.writeFileSync(file, Buffer.alloc(MiB));
    const late = await LateDisk.describe(formats, 'raw', { path: file, readOnly: true });
    expect([late.readOnly, late.supportsDiscard]).to.deep.equal([true, true]);
    await late.close();
    expect(String(await late.open().catch((e: unknown) => e))).to.match(/closed before it was opened/);
  });
});
