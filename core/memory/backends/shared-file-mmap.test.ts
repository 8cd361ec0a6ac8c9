import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestAddress } from '../../address.js';
import { GuestMemoryError } from '../errors.js';
import { createSharedFileMemory } from './shared-file-mmap.js';

const MiB = 1n << 20n;
const layout = (file: string, size = 4n * MiB) => ({
  backend: 'file' as const,
  path: file,
  regions: [{ start: 0n, size }],
});

function expectBackendError(fn: () => unknown, text: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(GuestMemoryError);
    expect((e as GuestMemoryError).kind).to.equal('Backend');
    expect((e as Error).message).to.match(text);
    return;
  }
  expect.fail('expected a GuestMemoryError');
}

describe('shared file guest memory (machine.memoryPath)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gm-file-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates a missing file at the guest size and leaves it after close', () => {
    const f = path.join(dir, 'ram');
    const m = createSharedFileMemory(layout(f));
    m.writeU32(GuestAddress.of(0x1000), 0xdeadbeef);
    m.close();
    expect(fs.statSync(f).size).to.equal(Number(4n * MiB));
    expect(fs.readFileSync(f).readUInt32LE(0x1000)).to.equal(0xdeadbeef);
  });

  it('grows an existing empty file, as QEMU does', () => {
    const f = path.join(dir, 'ram');
    fs.writeFileSync(f, '');
    createSharedFileMemory(layout(f)).close();
    expect(fs.statSync(f).size).to.equal(Number(4n * MiB));
  });

  it('never shrinks a larger file: an 8 MiB file stays 8 MiB with its tail intact', () => {
    const f = path.join(dir, 'ram');
    const data = Buffer.alloc(Number(8n * MiB), 0xa5);
    fs.writeFileSync(f, data);
    const m = createSharedFileMemory(layout(f));
    expect(m.readU8(GuestAddress.of(0x10))).to.equal(0xa5); // the guest sees what the file held
    m.close();
    const after = fs.readFileSync(f);
    expect(after.length).to.equal(data.length);
    expect(after.equals(data)).to.equal(true);
  });

  it('refuses a non-empty file smaller than the guest memory and leaves it untouched', () => {
    const f = path.join(dir, 'ram');
    fs.writeFileSync(f, Buffer.alloc(Number(MiB), 0x3c));
    expectBackendError(() => createSharedFileMemory(layout(f)), /holds 1048576 bytes, less than the guest's 4194304/);
    expect(fs.readFileSync(f).equals(Buffer.alloc(Number(MiB), 0x3c))).to.equal(true);
  });

  it('refuses what is not a regular file without blocking (a FIFO, a directory)', () => {
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).to.equal(0);
    expectBackendError(() => createSharedFileMemory(layout(fifo)), /not a regular file/);
    expectBackendError(() => createSharedFileMemory(layout(dir)), /cannot open guest memory file/);
  });

  it('a layout it refuses leaves no file behind', () => {
    const f = path.join(dir, 'ram');
    expect(() =>
      createSharedFileMemory({ backend: 'file', path: f, regions: [{ start: 0x10n, size: 4n * MiB }] }),
    ).to.throw(GuestMemoryError);
    expect(fs.existsSync(f)).to.equal(false);
  });
});
