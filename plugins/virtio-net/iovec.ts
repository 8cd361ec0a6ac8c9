import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { DescriptorBuffer } from '../../core/virtio/virtio.js';

/** Linux's IOV_MAX: writev takes at most this many pieces. */
export const IOV_MAX = 1024;

/**
 * struct iovec[] (x86-64: u64 base, u64 len) describing guest buffers by host address,
 * for a zero-copy writev straight from guest RAM. One array reused per queue; it holds
 * addresses only while one send runs.
 */
export class HostIovec {
  readonly raw = new BigUint64Array(2 * IOV_MAX);
  /** The same memory as bytes (what the koffi writev binding takes). */
  readonly bytes = new Uint8Array(this.raw.buffer);
  count = 0;

  /**
   * Fills the array with the host addresses of `buffers`; false (array unusable) when a
   * buffer is not inside one mapped region with a host address (the in-process heap
   * memory of tests, a buffer spanning two regions) or there are too many pieces: the
   * caller copies instead. Popping the chain already checked each buffer lies in guest
   * memory; this checks it again against the region it maps to.
   */
  fill(memory: GuestMemory, buffers: readonly DescriptorBuffer[]): boolean {
    if (buffers.length > IOV_MAX) return false;
    let n = 0;
    for (const b of buffers) {
      if (b.len === 0) continue;
      const region = memory.findRegion(b.addr);
      if (!region || region.hostAddress === 0n || !region.range.contains(b.addr, b.len)) return false;
      // SAFETY: [addr, addr+len) lies inside this region's live mapping (checked above); the
      // address is handed to writev for the duration of one synchronous call only.
      this.raw[2 * n] = region.hostAddress + b.addr.offsetFrom(region.range.start);
      this.raw[2 * n + 1] = BigInt(b.len);
      n++;
    }
    this.count = n;
    return true;
  }
}
