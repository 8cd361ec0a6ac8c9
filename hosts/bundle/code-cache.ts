/**
 * V8 code cache files for the bundle's vendor scripts (vendor-load.ts): V8's cached data (vm.Script
 * createCachedData) wrapped with a key and a checksum, so a file from another build, another Node/V8 or a
 * torn/corrupted write is recognised and ignored before V8 sees it (V8 checks its own version and flags, but
 * not the payload's integrity in release builds). Reading and writing never throw: a cache is an
 * optimisation, so any failure means "no cache" (reads) or "not written" (writes).
 *
 * Layout: MAGIC (8 bytes), key length (u32 LE), key (UTF-8), SHA-1 of the payload (20 bytes), payload.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const MAGIC = Buffer.from('TSVMMCC1', 'latin1');
const SHA1_BYTES = 20;

/**
 * The key a cache file must carry to be used: the vendor file's name (the build puts its content hash in it), the
 * V8 version and the architecture.
 */
export const cacheKey = (vendorFile: string): string =>
  `${path.basename(vendorFile)}|v8 ${process.versions.v8}|${process.arch}`;

/** The cache file of a vendor script: beside it, `<name>.v8cache`. */
export const cacheFileOf = (vendorFile: string): string => `${vendorFile}.v8cache`;

/** A cache file's bytes: the header (key, checksum) and V8's cached data. */
export function encodeCache(key: string, data: Buffer): Buffer {
  const k = Buffer.from(key, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(k.length);
  return Buffer.concat([MAGIC, len, k, createHash('sha1').update(data).digest(), data]);
}

/** V8's cached data from a cache file's bytes; undefined when the magic, key or checksum does not match. */
export function decodeCache(buf: Buffer, key: string): Buffer | undefined {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const klen = buf.readUInt32LE(MAGIC.length);
  const keyAt = MAGIC.length + 4;
  const sumAt = keyAt + klen;
  const dataAt = sumAt + SHA1_BYTES;
  if (dataAt > buf.length) return undefined;
  if (buf.toString('utf8', keyAt, sumAt) !== key) return undefined;
  const data = buf.subarray(dataAt);
  if (data.length === 0) return undefined;
  return createHash('sha1').update(data).digest().equals(buf.subarray(sumAt, dataAt)) ? data : undefined;
}

/** The cached data stored in `file` under `key`; undefined when absent, unreadable, stale or corrupt. */
export function readCache(file: string, key: string): Buffer | undefined {
  try {
    return decodeCache(fs.readFileSync(file), key);
  } catch {
    return undefined;
  }
}

/**
 * Writes `data` under `key` to `file` through a temporary file and a rename (a reader sees the old file or the new
 * one, never half of one). Returns whether it was written; an unwritable folder, a full disk etc. return false.
 */
export function writeCache(file: string, key: string, data: Buffer): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, encodeCache(key, data));
    fs.renameSync(tmp, file);
    return true;
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* nothing to remove */
    }
    return false;
  }
}
