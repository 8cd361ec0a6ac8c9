import { gzipSync } from 'node:zlib';
import { GuestKitError } from './errors.js';

/** One member of a newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it. */
export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000,
  S_IFREG = 0o100000,
  S_IFLNK = 0o120000,
  S_IFCHR = 0o020000;

function normalize(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.includes('..'))
    throw new GuestKitError('BadCpioEntry', `bad archive path "${p}"`, { path: p });
  return parts.join('/');
}

/**
 * Collects entries and writes a newc archive. Parent directories are added automatically
 * (the kernel does not create them), each path once; later entries replace earlier ones.
 */
export class CpioBuilder {
  private readonly entries = new Map<string, CpioEntry>();

  add(e: CpioEntry): this {
    const path = normalize(e.path);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!this.entries.has(dir)) this.entries.set(dir, { kind: 'dir', path: dir });
    }
    this.entries.set(path, { ...e, path });
    return this;
  }
  dir(path: string, mode = 0o755): this {
    return this.add({ kind: 'dir', path, mode });
  }
  file(path: string, data: Uint8Array | string, mode = 0o644): this {
    return this.add({ kind: 'file', path, data: typeof data === 'string' ? Buffer.from(data) : data, mode });
  }
  symlink(path: string, target: string): this {
    return this.add({ kind: 'symlink', path, target });
  }
  chardev(path: string, major: number, minor: number, mode = 0o600): this {
    return this.add({ kind: 'chardev', path, major, minor, mode });
  }
  has(path: string): boolean {
    return this.entries.has(normalize(path));
  }
  get size(): number {
    return this.entries.size;
  }

  /** The uncompressed archive, trailer included. */
  toBuffer(): Buffer {
    const chunks: Buffer[] = [];
    let ino = 1;
    for (const e of this.entries.values()) {
      let mode: number,
        data: Uint8Array = new Uint8Array(0),
        rdevMajor = 0,
        rdevMinor = 0;
      switch (e.kind) {
        case 'dir':
          mode = S_IFDIR | (e.mode ?? 0o755);
          break;
        case 'file':
          mode = S_IFREG | (e.mode ?? 0o644);
          data = e.data;
          break;
        case 'symlink':
          mode = S_IFLNK | 0o777;
          data = Buffer.from(e.target);
          break;
        case 'chardev':
          mode = S_IFCHR | (e.mode ?? 0o600);
          rdevMajor = e.major;
          rdevMinor = e.minor;
          break;
      }
      chunks.push(...member(ino++, mode, e.kind === 'dir' ? 2 : 1, e.path, data, rdevMajor, rdevMinor));
    }
    chunks.push(...member(0, 0, 1, 'TRAILER!!!', new Uint8Array(0), 0, 0));
    return Buffer.concat(chunks);
  }

  toGzip(): Buffer {
    return gzipSync(this.toBuffer(), { level: 6 });
  }
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

function member(
  ino: number,
  mode: number,
  nlink: number,
  name: string,
  data: Uint8Array,
  rmaj: number,
  rmin: number,
): Buffer[] {
  const nameBytes = Buffer.from(name + '\0');
  const header =
    '070701' + [ino, mode, 0, 0, nlink, 0, data.length, 0, 0, rmaj, rmin, nameBytes.length, 0].map(hex8).join('');
  const head = Buffer.concat([Buffer.from(header, 'latin1'), nameBytes]);
  return [
    head,
    Buffer.alloc(pad4(head.length)),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    Buffer.alloc(pad4(data.length)),
  ];
}

/** Reads a newc archive back (used by tests and to inspect kits): path -> entry. */
export function parseCpio(buf: Uint8Array): Map<string, { mode: number; data: Uint8Array }> {
  const out = new Map<string, { mode: number; data: Uint8Array }>();
  let p = 0;
  const text = (a: number, b: number) => Buffer.from(buf.subarray(a, b)).toString('latin1');
  while (p + 110 <= buf.length) {
    if (text(p, p + 6) !== '070701') throw new GuestKitError('BadCpioEntry', `bad cpio magic at ${p}`, { at: p });
    const field = (i: number) => parseInt(text(p + 6 + i * 8, p + 14 + i * 8), 16);
    const mode = field(1),
      size = field(6),
      namesize = field(11);
    const nameStart = p + 110;
    const name = text(nameStart, nameStart + namesize - 1);
    const dataStart = nameStart + namesize + pad4(110 + namesize);
    if (dataStart + size > buf.length)
      throw new GuestKitError('BadCpioEntry', `cpio member ${name} runs past the end`, { name });
    if (name === 'TRAILER!!!') break;
    out.set(name, { mode, data: buf.subarray(dataStart, dataStart + size) });
    p = dataStart + size + pad4(size);
  }
  return out;
}
