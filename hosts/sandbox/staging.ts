import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { SandboxError } from './errors.js';

/** One thing to place in a filesystem image. `dest` is absolute inside the image. */
export type StageOp =
  | { kind: 'file'; src: string; dest: string; mode?: number }
  | { kind: 'data'; dest: string; data: Uint8Array | string; mode?: number }
  | { kind: 'symlink'; dest: string; target: string }
  | { kind: 'dir'; dest: string; mode?: number };

/** Debian's merged /usr: these top-level names are links into /usr. */
const MERGED: Record<string, string> = { bin: 'usr/bin', sbin: 'usr/sbin', lib: 'usr/lib', lib64: 'usr/lib64' };

/** A host path as it lives in an image laid out with merged /usr. */
export function mergedUsr(p: string): string {
  const parts = posix.normalize(p).split('/');
  if (parts[1] && MERGED[parts[1]]) return '/' + [MERGED[parts[1]], ...parts.slice(2)].join('/');
  return posix.normalize(p);
}

/**
 * Plans the contents of a filesystem image (so the plan can be hashed to key a cache)
 * and then writes it to a folder for `mke2fs -d`. Files are hard-linked when possible.
 */
export class Staging {
  readonly ops = new Map<string, StageOp>();

  add(op: StageOp): this {
    const dest = posix.normalize(op.dest);
    if (!dest.startsWith('/') || dest.split('/').includes('..'))
      throw new SandboxError('ImageBuild', `bad image path ${op.dest}`, { dest: op.dest });
    if (!this.ops.has(dest)) this.ops.set(dest, { ...op, dest });
    return this;
  }
  has(dest: string): boolean {
    return this.ops.has(posix.normalize(dest));
  }

  /** The merged-/usr top-level links (/bin -> usr/bin ...). */
  mergedUsrLinks(): this {
    for (const [k, v] of Object.entries(MERGED)) this.add({ kind: 'symlink', dest: `/${k}`, target: v });
    return this;
  }

  /** A host file at its canonical path; the path asked for becomes a link to it when it differs. */
  hostFile(p: string, mode?: number): this {
    const canonical = mergedUsr(realpathSync(p));
    this.add({ kind: 'file', src: realpathSync(p), dest: canonical, mode });
    const asked = mergedUsr(resolve(p));
    if (asked !== canonical) this.add({ kind: 'symlink', dest: asked, target: canonical });
    return this;
  }

  /** A binary plus every shared library `ldd` lists for it. */
  hostBinary(p: string): this {
    this.hostFile(p);
    for (const lib of lddLibraries(p)) this.hostFile(lib);
    return this;
  }

  /** A host folder tree at `dest` (default: the same path). `skip(rel)` leaves entries out. */
  hostTree(src: string, dest = src, skip: (rel: string, isDir: boolean) => boolean = () => false): this {
    const walk = (rel: string) => {
      const from = join(src, rel);
      for (const e of readdirSync(from, { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        const isDir = e.isDirectory();
        if (skip(r, isDir)) continue;
        const to = posix.join(dest, r);
        if (e.isSymbolicLink()) {
          const target = readlinkSync(join(src, r));
          this.add({ kind: 'symlink', dest: to, target });
          const abs = resolve(dirname(join(src, r)), target);
          // an absolute link out of the tree (e.g. /usr/share/qemu -> /usr/lib/ipxe): bring its target
          if (posix.isAbsolute(target) && existsSync(abs) && statSync(abs).isFile()) this.hostFile(abs);
        } else if (isDir) {
          this.add({ kind: 'dir', dest: to });
          walk(r);
        } else if (e.isFile()) {
          this.add({ kind: 'file', src: join(src, r), dest: to });
        }
      }
    };
    this.add({ kind: 'dir', dest });
    walk('');
    return this;
  }

  /** A key that changes when any planned file (path, size, mtime) or content changes. */
  key(salt: string): string {
    const h = createHash('sha256').update(salt);
    for (const op of [...this.ops.values()].sort((a, b) => (a.dest < b.dest ? -1 : 1))) {
      h.update(`${op.kind}\0${op.dest}\0`);
      if (op.kind === 'file') {
        const st = statSync(op.src);
        h.update(`${op.src}\0${st.size}\0${st.mtimeMs}\0${op.mode ?? ''}`);
      }
      if (op.kind === 'data') h.update(op.data);
      if (op.kind === 'symlink') h.update(op.target);
    }
    return h.digest('hex').slice(0, 20);
  }

  /** Bytes the files take, rounded to 4 KiB blocks. */
  bytes(): number {
    let n = 0;
    for (const op of this.ops.values()) {
      const size = op.kind === 'file' ? statSync(op.src).size : op.kind === 'data' ? op.data.length : 0;
      n += Math.ceil(size / 4096) * 4096 + 4096;
    }
    return n;
  }

  /** Writes the plan under `root`. */
  materialize(root: string): void {
    mkdirSync(root, { recursive: true });
    const ordered = [...this.ops.values()].sort((a, b) => (a.dest < b.dest ? -1 : 1));
    for (const op of ordered) {
      const to = join(root, op.dest);
      mkdirSync(dirname(to), { recursive: true });
      if (existsSync(to) || isLink(to)) {
        if (op.kind === 'dir') setMode(to, op.mode);
        continue;
      }
      switch (op.kind) {
        case 'dir':
          mkdirSync(to, { recursive: true });
          setMode(to, op.mode);
          break;
        case 'symlink':
          symlinkSync(op.target, to);
          break;
        case 'data':
          writeFileSync(to, op.data);
          setMode(to, op.mode ?? 0o644);
          break;
        case 'file':
          if (op.mode === undefined) {
            try {
              linkSync(op.src, to);
              break;
            } catch {
              /* another filesystem: copy */
            }
          }
          copyFileSync(op.src, to);
          if (op.mode !== undefined) setMode(to, op.mode);
          break;
      }
    }
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
function setMode(p: string, mode?: number) {
  if (mode !== undefined) chmodSync(p, mode);
}

/** Shared libraries (and the ELF interpreter) a dynamically linked binary needs, from `ldd`. */
export function lddLibraries(bin: string): string[] {
  const r = spawnSync('ldd', [bin], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) {
    if (/not a dynamic executable/.test(r.stdout + r.stderr)) return [];
    throw new SandboxError('ImageBuild', `ldd ${bin} failed: ${(r.stderr || r.stdout).trim()}`, { bin });
  }
  const libs: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
    if (/=>\s*not found/.test(line))
      throw new SandboxError('ImageBuild', `${bin} needs a library that is not installed: ${line.trim()}`, { bin });
  }
  return libs;
}

/** Builds an ext4 image from a folder with `mke2fs -d`. `extraBytes` is free space left for writes. */
export function makeExt4(dir: string, image: string, label: string, usedBytes: number, extraBytes: number): void {
  const sizeK = Math.ceil((usedBytes * 1.15 + extraBytes + (64 << 20)) / 1024 / 4) * 4;
  const r = spawnSync(
    'mke2fs',
    [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-b',
      '4096',
      '-O',
      '^has_journal',
      '-E',
      'root_owner=0:0,lazy_itable_init=1',
      '-L',
      label,
      '-d',
      dir,
      image,
      `${sizeK}k`,
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (r.error || r.status !== 0) {
    throw new SandboxError(
      'ImageBuild',
      `mke2fs -d ${dir} failed: ${(r.stderr || r.error?.message || '').trim()} (is e2fsprogs >= 1.43 installed?)`,
      { dir, image },
    );
  }
}
