import { fail } from './errors.js';

/** Facts from the qcow2 specification (QEMU docs/interop/qcow2.txt), in one place. */
export const QCOW_MAGIC = 0x514649fb; // "QFI\xfb"
/** Header size of a version 2 image, in bytes (version 3 headers state their own length, at least 104). */
export const V2_HEADER_LENGTH = 72;
/** The smallest header_length a version 3 image may state, in bytes. */
export const V3_HEADER_LENGTH = 104;
/** log2 of the smallest cluster size (512 bytes). */
export const MIN_CLUSTER_BITS = 9;
/** log2 of the largest cluster size (2 MiB). */
export const MAX_CLUSTER_BITS = 21;
/** The longest backing file name accepted, in bytes (QEMU's limit). */
export const MAX_BACKING_NAME = 1023;
/** The largest L1 table accepted (32 MiB, as QEMU): a hostile header cannot make us allocate more. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** The largest refcount table accepted (8 MiB, as QEMU). */
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
/** Host offsets and virtual sizes above this are refused (keeps arithmetic exact in doubles). */
export const MAX_OFFSET = 2 ** 52;
/** The largest virtual disk size accepted, in bytes (2^50, 1 PiB). */
export const MAX_VIRTUAL_SIZE = 2 ** 50;

/** Incompatible feature bit 0: refcounts may be stale (a writer with lazy refcounts); repaired on read-write open. */
export const INCOMPAT_DIRTY = 1n << 0n;
/** Incompatible feature bit 1: the image is marked corrupt (e.g. a write hit metadata); it opens read-only only. */
export const INCOMPAT_CORRUPT = 1n << 1n;
/** Incompatible feature bit 2: guest data lives in an external data file (refused). */
export const INCOMPAT_DATA_FILE = 1n << 2n;
/** Incompatible feature bit 3: the header's compression_type field is valid (zstd possible). */
export const INCOMPAT_COMPRESSION = 1n << 3n;
/** Incompatible feature bit 4: extended L2 entries with subclusters (refused). */
export const INCOMPAT_EXTL2 = 1n << 4n;
/** Incompatible bits this implementation understands. */
export const INCOMPAT_SUPPORTED = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION;
/** Compatible feature bit 0: writers may defer refcount updates (we update them at once, only create/report it). */
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

/** Header extension type: end of the extension area. */
export const EXT_END = 0;
/** Header extension type: the backing file's format name. */
export const EXT_BACKING_FORMAT = 0xe2792aca;
/** Header extension type: the feature name table (names for the feature bits). */
export const EXT_FEATURE_NAMES = 0x6803f857;
/** Header extension type: persistent dirty bitmaps (read for `check` and `info`, never written). */
export const EXT_BITMAPS = 0x23852875;
/** Header extension type: full disk encryption header (encrypted images are refused). */
export const EXT_FDE = 0x0537be77;
/** Header extension type: the external data file's name (refused with INCOMPAT_DATA_FILE). */
export const EXT_DATA_FILE = 0x44415441;

/** Byte offsets of header fields that the writer updates in place. */
export const HDR_REFTABLE = 48; // refcount_table_offset (8) + refcount_table_clusters (4)
/** Byte offset of incompatible_features in the header. */
export const HDR_INCOMPAT = 72;
/** Byte offset of autoclear_features in the header. */
export const HDR_AUTOCLEAR = 88;

/**
 * A parsed and validated image header (offsets and sizes in bytes unless named otherwise: l1Size counts entries,
 * refcountTableClusters clusters); parseHeader refuses values this implementation cannot handle safely.
 */
export interface QcowHeader {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  /** Virtual disk size in bytes. */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  /** 0 = zlib (deflate), 1 = zstd. */
  compressionType: number;
  backingFile?: string;
  backingFormat?: string;
  /** Names from the feature name table, keyed "incompatible:3" etc. */
  featureNames: Map<string, string>;
  /** Extension types seen, for `info`. */
  extensions: number[];
  /** The bitmaps extension, when present (valid only while autoclear bit 0 is set). */
  bitmaps?: { count: number; directorySize: number; directoryOffset: number };
}

/** Autoclear bit 0: the bitmaps extension is consistent with the image. */
export const AUTOCLEAR_BITMAPS = 1n << 0n;

function u64(dv: DataView, at: number, field: string): number {
  const v = dv.getBigUint64(at);
  if (v >= BigInt(MAX_OFFSET))
    fail('TooLarge', `header field ${field} = ${v} is beyond what this implementation supports (2^52)`, {
      field,
      value: v.toString(),
    });
  return Number(v);
}

/** Number of L1 entries a virtual size needs. */
export function l1EntriesFor(size: number, clusterBits: number): number {
  const l2Coverage = 2 ** (clusterBits + clusterBits - 3);
  return Math.ceil(size / l2Coverage);
}

/**
 * Parses and validates cluster 0 (pass at least the first cluster of the file, or the whole
 * file when it is shorter). `fileSize` bounds every table. Throws QcowError on anything malformed.
 */
export function parseHeader(buf: Uint8Array, fileSize: number): QcowHeader {
  if (buf.length < V2_HEADER_LENGTH) fail('BadHeader', `file too short for a qcow2 header (${buf.length} bytes)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0) !== QCOW_MAGIC) fail('BadMagic', 'not a qcow2 image (bad magic)');
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3)
    fail('BadVersion', `unsupported qcow2 version ${version} (2 or 3 expected)`, { version });
  const clusterBits = dv.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    fail('BadClusterSize', `cluster_bits ${clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`, {
      clusterBits,
    });
  }
  const cs = 2 ** clusterBits;
  const h: QcowHeader = {
    version,
    backingFileOffset: u64(dv, 8, 'backing_file_offset'),
    backingFileSize: dv.getUint32(16),
    clusterBits,
    size: u64(dv, 24, 'size'),
    cryptMethod: dv.getUint32(32),
    l1Size: dv.getUint32(36),
    l1TableOffset: u64(dv, 40, 'l1_table_offset'),
    refcountTableOffset: u64(dv, 48, 'refcount_table_offset'),
    refcountTableClusters: dv.getUint32(56),
    nbSnapshots: dv.getUint32(60),
    snapshotsOffset: u64(dv, 64, 'snapshots_offset'),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
    featureNames: new Map(),
    extensions: [],
  };
  if (version === 3) {
    if (buf.length < V3_HEADER_LENGTH) fail('BadHeader', 'file too short for a version 3 header');
    h.incompatible = dv.getBigUint64(72);
    h.compatible = dv.getBigUint64(80);
    h.autoclear = dv.getBigUint64(88);
    h.refcountOrder = dv.getUint32(96);
    h.headerLength = dv.getUint32(100);
    if (h.headerLength < V3_HEADER_LENGTH)
      fail('BadHeader', `header_length ${h.headerLength} is shorter than 104`, { headerLength: h.headerLength });
    if (h.headerLength % 8 !== 0)
      fail('BadHeader', `header_length ${h.headerLength} is not a multiple of 8`, { headerLength: h.headerLength });
    if (h.headerLength > cs || h.headerLength > buf.length)
      fail('BadHeader', `header_length ${h.headerLength} exceeds the cluster size`, { headerLength: h.headerLength });
    if (h.headerLength > 104) h.compressionType = dv.getUint8(104);
  }
  if (h.refcountOrder > 6)
    fail('BadRefcountOrder', `refcount_order ${h.refcountOrder} is above 6`, { refcountOrder: h.refcountOrder });

  // Header extensions live between the header and the backing name (or the end of cluster 0).
  const clusterEnd = Math.min(cs, buf.length);
  if (h.backingFileOffset !== 0) {
    if (h.backingFileOffset < h.headerLength) fail('BadHeader', 'backing file name overlaps the header');
    if (h.backingFileSize === 0) fail('BadHeader', 'backing file offset given without a size');
  } else if (h.backingFileSize !== 0) {
    fail('BadHeader', 'backing file size given without an offset');
  }
  const extEnd = h.backingFileOffset !== 0 ? Math.min(h.backingFileOffset, clusterEnd) : clusterEnd;
  parseExtensions(h, dv, extEnd);

  // Incompatible features: refuse what we do not implement, naming it from the table when we can.
  const unknown = h.incompatible & ~INCOMPAT_SUPPORTED;
  if (unknown !== 0n) {
    const names: string[] = [];
    for (let b = 0n; b < 64n; b++) {
      if (unknown & (1n << b)) names.push(h.featureNames.get(`incompatible:${b}`) ?? builtinIncompatName(b));
    }
    fail('UnsupportedFeature', `image uses incompatible features this implementation lacks: ${names.join(', ')}`, {
      bits: unknown.toString(16),
    });
  }
  if (h.compressionType > 1)
    fail('UnsupportedFeature', `unknown compression type ${h.compressionType}`, {
      compressionType: h.compressionType,
    });
  if (h.compressionType !== 0 && !(h.incompatible & INCOMPAT_COMPRESSION)) {
    fail('BadHeader', 'compression type set without the compression-type incompatible bit');
  }
  if (h.cryptMethod !== 0)
    fail('Encrypted', `encrypted images (crypt_method ${h.cryptMethod}) are not supported`, {
      cryptMethod: h.cryptMethod,
    });

  if (h.size > MAX_VIRTUAL_SIZE)
    fail('TooLarge', `virtual size ${h.size} exceeds the limit ${MAX_VIRTUAL_SIZE}`, { size: h.size });
  if (h.refcountTableClusters === 0) fail('BadTable', 'image has no refcount table');
  checkTable('L1 table', h.l1TableOffset, h.l1Size * 8, MAX_L1_BYTES, cs, fileSize);
  checkTable('refcount table', h.refcountTableOffset, h.refcountTableClusters * cs, MAX_REFTABLE_BYTES, cs, fileSize);
  if (h.nbSnapshots > 65536) fail('TooLarge', `${h.nbSnapshots} snapshots is above the limit 65536`);
  if (h.nbSnapshots > 0 && h.snapshotsOffset % cs !== 0)
    fail('BadTable', 'snapshot table offset is not cluster aligned');
  if (h.l1Size < l1EntriesFor(h.size, clusterBits)) {
    fail('BadTable', `L1 table (${h.l1Size} entries) is too small for the virtual size ${h.size}`, {
      l1Size: h.l1Size,
      size: h.size,
    });
  }
  if (rangesOverlap(h.l1TableOffset, h.l1Size * 8, h.refcountTableOffset, h.refcountTableClusters * cs)) {
    fail('BadTable', 'L1 table and refcount table overlap');
  }
  if (h.l1Size > 0 && h.l1TableOffset < cs) fail('BadTable', 'L1 table overlaps the header');
  if (h.refcountTableOffset < cs) fail('BadTable', 'refcount table overlaps the header');

  if (h.backingFileOffset !== 0) {
    if (h.backingFileSize > MAX_BACKING_NAME)
      fail('Backing', `backing file name too long (${h.backingFileSize} > ${MAX_BACKING_NAME})`);
    if (h.backingFileOffset + h.backingFileSize > clusterEnd)
      fail('Backing', 'backing file name runs past the first cluster');
    const raw = buf.subarray(h.backingFileOffset, h.backingFileOffset + h.backingFileSize);
    try {
      h.backingFile = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch (e) {
      fail('Backing', 'backing file name is not UTF-8', {}, e);
    }
    if (h.backingFile.includes('\0')) fail('Backing', 'backing file name contains a NUL byte');
  }
  return h;
}

function builtinIncompatName(bit: bigint): string {
  switch (bit) {
    case 2n:
      return 'external data file';
    case 4n:
      return 'extended L2 entries';
    default:
      return `unknown bit ${bit}`;
  }
}

function parseExtensions(h: QcowHeader, dv: DataView, extEnd: number): void {
  let pos = h.headerLength;
  const seen = new Set<number>();
  while (pos + 8 <= extEnd) {
    const type = dv.getUint32(pos);
    const len = dv.getUint32(pos + 4);
    if (type === EXT_END) return;
    const data = pos + 8;
    if (len > extEnd - data)
      fail('BadHeader', `header extension 0x${type.toString(16)} runs past the extension area`, { type, len });
    if (seen.has(type)) fail('BadHeader', `header extension 0x${type.toString(16)} appears twice`, { type });
    seen.add(type);
    h.extensions.push(type);
    switch (type) {
      case EXT_BACKING_FORMAT: {
        if (len > 64) fail('BadHeader', `backing format extension too long (${len})`);
        const bytes = new Uint8Array(dv.buffer, dv.byteOffset + data, len);
        h.backingFormat = String.fromCharCode(...bytes).replace(/\0+$/, '');
        break;
      }
      case EXT_FEATURE_NAMES:
        for (let e = data; e + 48 <= data + len; e += 48) {
          const t = dv.getUint8(e);
          const bit = dv.getUint8(e + 1);
          const nameBytes = new Uint8Array(dv.buffer, dv.byteOffset + e + 2, 46);
          const end = nameBytes.indexOf(0);
          const name = String.fromCharCode(...nameBytes.subarray(0, end < 0 ? 46 : end));
          const tn = t === 0 ? 'incompatible' : t === 1 ? 'compatible' : 'autoclear';
          h.featureNames.set(`${tn}:${bit}`, name);
        }
        break;
      case EXT_BITMAPS:
        if (len < 24) fail('BadHeader', `bitmaps extension too short (${len} bytes)`);
        h.bitmaps = {
          count: dv.getUint32(data),
          directorySize: u64(dv, data + 8, 'bitmap_directory_size'),
          directoryOffset: u64(dv, data + 16, 'bitmap_directory_offset'),
        };
        break;
      default:
        // External data file, FDE and unknown extensions: ignored here. Bitmaps are
        // disowned on read-write open by clearing the autoclear bit; FDE goes with crypt_method.
        break;
    }
    pos = data + Math.ceil(len / 8) * 8;
  }
}

function checkTable(what: string, offset: number, bytes: number, max: number, cs: number, fileSize: number): void {
  if (bytes > max) fail('TooLarge', `${what} is too large (${bytes} bytes, limit ${max})`, { offset, bytes });
  if (bytes === 0) return;
  if (offset % cs !== 0) fail('BadTable', `${what} offset ${offset} is not cluster aligned`, { offset });
  if (offset + bytes > fileSize)
    fail('OffsetPastEof', `${what} (${offset}+${bytes}) runs past the end of the file (${fileSize})`, {
      offset,
      bytes,
      fileSize,
    });
}

function rangesOverlap(a: number, alen: number, b: number, blen: number): boolean {
  return alen > 0 && blen > 0 && a < b + blen && b < a + alen;
}

/** What encodeHeader writes for a new image (createQcow2's layout: offsets in bytes, l1Size in entries). */
export interface NewHeader {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountOrder: number;
  lazyRefcounts?: boolean;
  backingFile?: string;
  backingFormat?: string;
}

/** Encodes cluster 0 for a new image: header, extensions, end marker, backing name. */
export function encodeHeader(n: NewHeader): Uint8Array {
  const cs = 2 ** n.clusterBits;
  const buf = new Uint8Array(cs);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, QCOW_MAGIC);
  dv.setUint32(4, n.version);
  dv.setUint32(20, n.clusterBits);
  dv.setBigUint64(24, BigInt(n.size));
  dv.setUint32(36, n.l1Size);
  dv.setBigUint64(40, BigInt(n.l1TableOffset));
  dv.setBigUint64(48, BigInt(n.refcountTableOffset));
  dv.setUint32(56, n.refcountTableClusters);
  let pos = V2_HEADER_LENGTH;
  if (n.version === 3) {
    dv.setBigUint64(80, n.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n);
    dv.setUint32(96, n.refcountOrder);
    dv.setUint32(100, 112);
    pos = 112; // byte 104 = compression type 0 (zlib), then padding
  } else if (n.refcountOrder !== 4) {
    fail('Unsupported', 'version 2 images have 16-bit refcounts only');
  }
  const enc = new TextEncoder();
  if (n.backingFile !== undefined && n.backingFormat !== undefined) {
    const fmt = enc.encode(n.backingFormat);
    dv.setUint32(pos, EXT_BACKING_FORMAT);
    dv.setUint32(pos + 4, fmt.length);
    buf.set(fmt, pos + 8);
    pos += 8 + Math.ceil(fmt.length / 8) * 8;
  }
  if (n.version === 3) {
    // Feature name table so that other tools can name our bits.
    const names: Array<[number, number, string]> = [
      [0, 0, 'dirty bit'],
      [0, 1, 'corrupt bit'],
      [0, 3, 'compression type'],
      [1, 0, 'lazy refcounts'],
    ];
    dv.setUint32(pos, EXT_FEATURE_NAMES);
    dv.setUint32(pos + 4, names.length * 48);
    names.forEach(([t, b, name], i) => {
      const e = pos + 8 + i * 48;
      buf[e] = t;
      buf[e + 1] = b;
      buf.set(enc.encode(name), e + 2);
    });
    pos += 8 + names.length * 48;
  }
  pos += 8; // end-of-extensions marker (zeros)
  if (n.backingFile !== undefined) {
    const name = enc.encode(n.backingFile);
    if (name.length > MAX_BACKING_NAME)
      fail('Backing', `backing file name too long (${name.length} > ${MAX_BACKING_NAME})`);
    if (pos + name.length > cs) fail('Backing', 'backing file name does not fit in the first cluster');
    buf.set(name, pos);
    dv.setBigUint64(8, BigInt(pos));
    dv.setUint32(16, name.length);
  }
  return buf;
}
