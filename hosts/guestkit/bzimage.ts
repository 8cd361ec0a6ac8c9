import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { GuestKitError } from './errors.js';
import { lz4DecompressLegacy } from './lz4.js';

/** The fields of the x86 boot protocol setup header the kit needs (Documentation/arch/x86/boot.rst). */
export interface SetupHeader {
  setupSects: number;
  /** Boot protocol version, e.g. 0x020f. */
  version: number;
  /** Offset of the protected-mode kernel in the file: (setup_sects + 1) * 512. */
  protectedModeOffset: number;
  /** Protected-mode code size in bytes (syssize * 16). */
  protectedModeSize: number;
  /** Offset and length of the compressed payload, relative to the protected-mode code. */
  payloadOffset: number;
  payloadLength: number;
}

/** The compression of a bzImage payload, told by its magic bytes ('unknown' when none matches). */
export type Compression = 'gzip' | 'xz' | 'lz4' | 'zstd' | 'bzip2' | 'lzma' | 'lzo' | 'unknown';

const HDRS = 0x53726448; // "HdrS"

/**
 * Reads a bzImage's setup header and checks it is usable (boot flag, "HdrS", protocol >= 2.08, payload and
 * protected-mode code inside the file); throws GuestKitError 'BadKernelImage' otherwise.
 */
export function parseSetupHeader(img: Uint8Array): SetupHeader {
  const bad = (why: string, data: Record<string, unknown> = {}): never => {
    throw new GuestKitError('BadKernelImage', `not a usable bzImage: ${why}`, { size: img.length, ...data });
  };
  if (img.length < 0x250 + 4) bad('file is too small for a setup header');
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (dv.getUint16(0x1fe, true) !== 0xaa55) bad('missing boot flag 0xAA55 at 0x1fe');
  if (dv.getUint32(0x202, true) !== HDRS) bad('missing "HdrS" signature at 0x202');
  const version = dv.getUint16(0x206, true);
  if (version < 0x0208)
    bad(`boot protocol ${version.toString(16)} is older than 2.08 (no payload fields)`, { version });
  const setupSects = img[0x1f1] || 4;
  const protectedModeOffset = (setupSects + 1) * 512;
  const protectedModeSize = dv.getUint32(0x1f4, true) * 16;
  const payloadOffset = dv.getUint32(0x248, true);
  const payloadLength = dv.getUint32(0x24c, true);
  if (protectedModeOffset + protectedModeSize > img.length) {
    bad(`truncated: the header says ${protectedModeOffset + protectedModeSize} bytes, the file has ${img.length}`, {
      expected: protectedModeOffset + protectedModeSize,
    });
  }
  if (payloadLength < 8 || protectedModeOffset + payloadOffset + payloadLength > img.length) {
    bad(`payload [${payloadOffset}, +${payloadLength}) lies outside the file (truncated?)`, {
      payloadOffset,
      payloadLength,
    });
  }
  return { setupSects, version, protectedModeOffset, protectedModeSize, payloadOffset, payloadLength };
}

/** The compression a payload starts with, from its magic bytes. */
export function detectCompression(p: Uint8Array): Compression {
  const at = (...bytes: number[]) => bytes.every((b, i) => p[i] === b);
  if (at(0x1f, 0x8b)) return 'gzip';
  if (at(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (at(0x02, 0x21, 0x4c, 0x18)) return 'lz4';
  if (at(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (at(0x42, 0x5a, 0x68)) return 'bzip2';
  if (at(0x89, 0x4c, 0x5a, 0x4f)) return 'lzo';
  if (at(0x5d, 0x00, 0x00)) return 'lzma';
  return 'unknown';
}

/** Runs a system decompressor (stdin -> stdout). */
function viaTool(tool: string, args: string[], input: Uint8Array): Uint8Array {
  const r = spawnSync(tool, args, { input, maxBuffer: 1 << 30, timeout: 120_000 });
  if (r.error)
    throw new GuestKitError(
      'Decompress',
      `cannot run ${tool} (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install it`,
      { tool },
      { cause: r.error },
    );
  if (r.status !== 0)
    throw new GuestKitError('Decompress', `${tool} failed: ${r.stderr.toString().trim()} (truncated image?)`, {
      tool,
      status: r.status,
    });
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
}

/**
 * Decompresses a kernel payload. The x86 build appends the uncompressed size as a u32 LE
 * after the compressed stream (`size_append`); it is checked against the result.
 */
export function decompressPayload(payload: Uint8Array): { data: Uint8Array; compression: Compression } {
  const compression = detectCompression(payload);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const expected = dv.getUint32(payload.length - 4, true);
  const stream = payload.subarray(0, payload.length - 4);
  let data: Uint8Array;
  switch (compression) {
    case 'gzip':
      try {
        data = gunzipSync(stream);
      } catch (e) {
        throw new GuestKitError(
          'Decompress',
          `gzip payload is corrupt: ${(e as Error).message} (truncated image?)`,
          {},
          { cause: e },
        );
      }
      break;
    case 'lz4':
      data = lz4DecompressLegacy(payload, expected);
      break;
    case 'xz':
      data = viaTool('xz', ['-dc', '--single-stream'], stream);
      break;
    case 'zstd':
      data = viaTool('zstd', ['-dcq'], stream);
      break;
    case 'bzip2':
      data = viaTool('bzip2', ['-dc'], stream);
      break;
    case 'lzma':
      data = viaTool('xz', ['--format=lzma', '-dc'], stream);
      break;
    case 'lzo':
      data = viaTool('lzop', ['-dc'], stream);
      break;
    default:
      throw new GuestKitError(
        'BadKernelImage',
        `unknown payload compression (first bytes ${Buffer.from(payload.subarray(0, 6)).toString('hex')})`,
        {},
      );
  }
  if (data.length !== expected) {
    throw new GuestKitError(
      'Decompress',
      `${compression} payload decompressed to ${data.length} bytes, the image says ${expected}`,
      { got: data.length, expected, compression },
    );
  }
  return { data, compression };
}

/** Extracts the ELF vmlinux from a bzImage (what the kernel's scripts/extract-vmlinux does). */
export function extractVmlinux(bzImage: Uint8Array): {
  vmlinux: Uint8Array;
  compression: Compression;
  header: SetupHeader;
} {
  const header = parseSetupHeader(bzImage);
  const start = header.protectedModeOffset + header.payloadOffset;
  const { data, compression } = decompressPayload(bzImage.subarray(start, start + header.payloadLength));
  return { vmlinux: data, compression, header };
}
