import { GuestAddress } from '../../core/address.js';
import type { GuestMemory, MemoryAccess } from '../../core/memory/guest-memory.js';

/**
 * Little-endian access to a validated guest range (a ring or descriptor table).
 * When the range lies in one memory region it goes through a DataView over the
 * region's zero-copy view (valid until the guest memory is closed, which happens
 * only after devices stop); otherwise through GuestMemory's checked accessors.
 * Callers bound `off` to the range they validated. A ring the device writes (the used
 * ring) is opened with access 'write', which refuses read-only memory.
 */
export class RingView {
  private readonly dv: DataView | undefined;

  constructor(
    private readonly memory: GuestMemory,
    readonly base: bigint,
    readonly bytes: number,
    access: MemoryAccess = 'read',
  ) {
    const region = memory.findRegion(GuestAddress.of(base));
    if (region && region.range.contains(base, bytes)) {
      const s = memory.slice(GuestAddress.of(base), bytes, access);
      this.dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
    }
  }

  private at(off: number): GuestAddress {
    return GuestAddress.of(this.base + BigInt(off));
  }

  u16(off: number): number {
    return this.dv ? this.dv.getUint16(off, true) : this.memory.readU16(this.at(off));
  }
  u32(off: number): number {
    return this.dv ? this.dv.getUint32(off, true) : this.memory.readU32(this.at(off));
  }
  u64(off: number): bigint {
    return this.dv ? this.dv.getBigUint64(off, true) : this.memory.readU64(this.at(off));
  }
  setU16(off: number, v: number): void {
    if (this.dv) this.dv.setUint16(off, v, true);
    else this.memory.writeU16(this.at(off), v);
  }
  setU32(off: number, v: number): void {
    if (this.dv) this.dv.setUint32(off, v, true);
    else this.memory.writeU32(this.at(off), v);
  }
}

/** Whether [addr, addr + len) lies in guest memory: a quick per-region check, then the full (spanning) one. */
export function inGuestMemory(memory: GuestMemory, addr: bigint, len: number): boolean {
  if (addr < 0n || addr + BigInt(len) > 1n << 64n) return false;
  for (const r of memory.regions) if (r.range.contains(addr, len)) return true;
  return memory.isValidRange(GuestAddress.of(addr), len);
}
