import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { DescriptorBuffer } from '../../core/virtio/virtio.js';

/** Linux's IOV_MAX: writev takes at most this many pieces. */
export const IOV_MAX = 1024;

const TWO32 = 2 ** 32;

/** A region's bounds as plain numbers (guest RAM and x86-64 host addresses stay far below 2^53). */
interface NumRegion {
  start: number;
  end: number;
  host: number;
  bytes: Uint8Array;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Guest memory regions with their bounds as plain numbers, so the per-packet paths find
 * the region of a buffer without bigint arithmetic (a last-hit cache first). Regions
 * beyond 2^53 are left out: their buffers take the callers' generic (copying) paths.
 */
export class RegionCache {
  private memory?: GuestMemory;
  private regions: NumRegion[] = [];
  private last?: NumRegion;

  /**
   * Whether the cached views may be used now: the memory is still open (its views die
   * with close()) and its writes are not being observed (GuestMemory.writesObserved). Call
   * once per handler run (memory is closed only between runs, by the main thread that runs
   * the handlers); find() is valid until the run ends.
   */
  usable(memory: GuestMemory): boolean {
    if (memory.writesObserved) return false; // a live migration counts VMM writes: go through the methods
    if (memory !== this.memory) this.load(memory);
    const first = memory.regions[0];
    return first !== undefined && memory.isValidRange(first.range.start, 1);
  }

  /** The region holding all of the buffer [addr, addr+len), or undefined. */
  find(memory: GuestMemory, b: DescriptorBuffer): { region: NumRegion; offset: number } | undefined {
    if (memory !== this.memory) this.load(memory);
    const len = b.len;
    if (!Number.isSafeInteger(len) || len < 0 || b.addr.value > MAX_SAFE) return undefined;
    const addr = Number(b.addr.value);
    const fits = (r: NumRegion): boolean => addr >= r.start && addr + len <= r.end;
    let r = this.last && fits(this.last) ? this.last : undefined;
    if (!r) {
      r = this.regions.find(fits);
      if (!r) return undefined;
      this.last = r;
    }
    return { region: r, offset: addr - r.start };
  }

  private load(memory: GuestMemory): void {
    this.memory = memory;
    this.last = undefined;
    this.regions = [];
    for (const r of memory.regions) {
      const end = r.range.end;
      // Read-only regions are left to the generic paths (which refuse writes to them).
      if (r.readOnly || end > MAX_SAFE || r.hostAddress + r.range.length > MAX_SAFE) continue;
      this.regions.push({
        start: Number(r.range.start.value),
        end: Number(end),
        host: Number(r.hostAddress),
        bytes: r.bytes,
      });
    }
  }
}

/**
 * Copies `data` into the device-writable buffers of a chain (in order) through the
 * regions' views (only after `cache.usable(memory)` said yes in this run); false (some
 * bytes may be written) when a buffer lies outside one region or the buffers are too
 * small: the caller then writes the whole frame again with ChainWriter.
 */
export function copyToBuffers(
  cache: RegionCache,
  memory: GuestMemory,
  buffers: readonly DescriptorBuffer[],
  data: Uint8Array,
): boolean {
  let off = 0;
  for (const b of buffers) {
    if (off >= data.length) break;
    const at = cache.find(memory, b);
    if (!at || at.region.bytes.length < at.offset + b.len) return false;
    const n = Math.min(b.len, data.length - off);
    at.region.bytes.set(data.subarray(off, off + n), at.offset);
    off += n;
  }
  return off === data.length;
}

/**
 * struct iovec[] (x86-64: u64 base, u64 len) describing guest buffers by host address,
 * for a zero-copy writev straight from guest RAM. One array reused per queue; it holds
 * addresses only while one send runs. The arithmetic is done in plain numbers (no
 * bigint per packet): every value is checked to be a safe integer first.
 */
export class HostIovec {
  private readonly words = new Uint32Array(4 * IOV_MAX);
  /** The array as bytes (what the koffi writev binding takes). */
  readonly bytes = new Uint8Array(this.words.buffer);
  count = 0;
  /**
   * Byte 1 of the gathered data (gso_type when it starts with a virtio_net_hdr); -1 when the first piece is shorter.
   */
  secondByte = -1;
  private readonly cache = new RegionCache();

  /** Entry `i` as bigints (tests, diagnostics). */
  entry(i: number): { base: bigint; len: bigint } {
    const w = this.words;
    return {
      base: (BigInt(w[4 * i + 1]) << 32n) | BigInt(w[4 * i]),
      len: (BigInt(w[4 * i + 3]) << 32n) | BigInt(w[4 * i + 2]),
    };
  }

  /**
   * Fills the array with the host addresses of `buffers`; false (array unusable) when a
   * buffer is not inside one mapped region with a host address (the in-process heap
   * memory of tests, a buffer spanning two regions) or there are too many pieces: the
   * caller copies instead. Popping the chain already checked each buffer lies in guest
   * memory; this checks it again against the region it maps to.
   */
  fill(memory: GuestMemory, buffers: readonly DescriptorBuffer[]): boolean {
    if (buffers.length > IOV_MAX) return false;
    const w = this.words;
    let n = 0;
    this.secondByte = -1;
    for (const b of buffers) {
      const len = b.len;
      if (len === 0) continue;
      const at = this.cache.find(memory, b);
      if (!at || at.region.host === 0) return false;
      const r = at.region;
      // SAFETY: [addr, addr+len) lies inside this region's live mapping (checked by find);
      // the address is handed to writev for the duration of one synchronous call only.
      const host = r.host + at.offset;
      w[4 * n] = host % TWO32;
      w[4 * n + 1] = Math.floor(host / TWO32);
      w[4 * n + 2] = len % TWO32;
      w[4 * n + 3] = Math.floor(len / TWO32);
      if (n === 0 && len >= 2) this.secondByte = r.bytes[at.offset + 1];
      n++;
    }
    this.count = n;
    return true;
  }
}
