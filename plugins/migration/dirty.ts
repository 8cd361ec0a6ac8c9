import type { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import type { SavedState } from '../../core/state/snapshottable.js';
import { SNAPSHOT_PAGE } from './format.js';

/** One guest memory region in the memory-file space (regions one after another). */
interface Span {
  start: bigint;
  end: bigint;
  page0: number;
}

/** The GuestMemory methods that write guest memory (or hand out writable views), wrapped while tracking. */
const WRITERS = [
  'write',
  'fill',
  'writeU8',
  'writeU16',
  'writeU32',
  'writeU64',
  'writeLayout',
  'readFromFile',
  'slice',
  'slices',
  'sliceAt',
] as const;

/**
 * Which guest pages changed since the last harvest, in memory-file page numbers: KVM's dirty log for what the
 * vCPUs wrote, and a VMM-side bitmap for what the VMM's devices wrote — every GuestMemory call that writes or hands
 * out a writable view marks its pages, before the write. Views handed out before tracking began (virtio used
 * rings, kept from activation) are not seen: `queueRingPages` gives those pages from the saved states.
 * A harvest is exact only while no device I/O is in flight (the sender harvests with devices quiet).
 */
export class DirtyTracker {
  private readonly spans: Span[] = [];
  readonly pages: number;
  private readonly vmm: Uint8Array;
  private readonly saved = new Map<string, { own: boolean; value: unknown }>();
  private logging = false;

  constructor(
    private readonly memory: GuestMemory,
    private readonly vm: Vm | undefined,
  ) {
    let page = 0;
    for (const r of memory.regions) {
      const start = r.range.start.value;
      this.spans.push({ start, end: start + BigInt(r.bytes.length), page0: page });
      page += r.bytes.length / SNAPSHOT_PAGE;
    }
    this.pages = page;
    this.vmm = new Uint8Array(page);
  }

  /** Whether the hypervisor logs dirty pages (else every harvest says: all pages). */
  get hasDirtyLog(): boolean {
    return this.logging;
  }

  /** Turns KVM dirty logging on for every RAM slot (where the VM has it) and wraps the memory's writers. */
  start(): void {
    if (this.vm?.capabilities.dirtyLog) {
      try {
        this.setLogging(true);
        this.logging = true;
      } catch {
        this.setLogging(false);
      }
    }
    const m = this.memory as unknown as Record<string, unknown>;
    this.memory.writesObserved = true; // devices with their own views (virtio-net rx) write through the methods
    for (const name of WRITERS) {
      const own = Object.prototype.hasOwnProperty.call(m, name);
      const orig = m[name] as (...a: unknown[]) => unknown;
      if (typeof orig !== 'function') continue; // an optional method (sliceAt) this memory lacks
      this.saved.set(name, { own, value: own ? orig : undefined });
      m[name] = (...a: unknown[]): unknown => {
        this.markCall(name, a);
        return orig.apply(this.memory, a);
      };
    }
  }

  /** Undoes start(): dirty logging off, the memory's own methods back. */
  stop(): void {
    if (this.logging) {
      try {
        this.setLogging(false);
      } catch {
        // the VM may be gone already
      }
      this.logging = false;
    }
    const m = this.memory as unknown as Record<string, unknown>;
    delete this.memory.writesObserved;
    for (const [name, s] of this.saved) {
      if (s.own) m[name] = s.value;
      else delete m[name];
    }
    this.saved.clear();
  }

  private setLogging(on: boolean): void {
    this.memory.regions.forEach((r, slot) =>
      this.vm!.setMemorySlot({
        slot,
        guestAddress: r.range.start.value,
        size: r.range.length,
        hostAddress: r.hostAddress,
        logDirtyPages: on || undefined,
      }),
    );
  }

  private markCall(name: string, a: unknown[]): void {
    switch (name) {
      case 'write':
        return this.mark(a[0] as GuestAddress, (a[1] as Uint8Array).length);
      case 'fill':
        return this.mark(a[0] as GuestAddress, a[1] as number);
      case 'writeU8':
        return this.mark(a[0] as GuestAddress, 1);
      case 'writeU16':
        return this.mark(a[0] as GuestAddress, 2);
      case 'writeU32':
        return this.mark(a[0] as GuestAddress, 4);
      case 'writeU64':
        return this.mark(a[0] as GuestAddress, 8);
      case 'writeLayout':
        return this.mark(a[0] as GuestAddress, a[2] as number);
      case 'readFromFile':
        return this.mark(a[1] as GuestAddress, a[2] as number);
      case 'sliceAt': // (addr: number, length, access)
        if (a[2] === 'write' && Number.isSafeInteger(a[0]) && (a[1] as number) > 0)
          this.markRange(BigInt(a[0] as number), BigInt(a[1] as number));
        return;
      default: // slice, slices: only writable views
        if (a[2] === 'write') this.mark(a[0] as GuestAddress, a[1] as number);
    }
  }

  /** Marks the pages of [addr, addr+len) written by the VMM. */
  markRange(start: bigint, len: bigint): void {
    const end = start + len;
    for (const s of this.spans) {
      if (end <= s.start || start >= s.end) continue;
      const from = (start > s.start ? start : s.start) - s.start;
      const to = (end < s.end ? end : s.end) - s.start;
      const p0 = s.page0 + Number(from / BigInt(SNAPSHOT_PAGE));
      const p1 = s.page0 + Number((to + BigInt(SNAPSHOT_PAGE) - 1n) / BigInt(SNAPSHOT_PAGE));
      this.vmm.fill(1, p0, p1);
    }
  }

  private mark(addr: GuestAddress, len: number): void {
    if (typeof addr?.value === 'bigint' && Number.isFinite(len) && len > 0) this.markRange(addr.value, BigInt(len));
  }

  /**
   * The pages written since the last harvest (or every page when the hypervisor keeps no dirty log), as a bitmap
   * of one byte per memory-file page; clears both logs.
   */
  harvest(): Uint8Array {
    const out = this.vmm.slice();
    this.vmm.fill(0);
    if (!this.logging) return out.fill(1);
    this.memory.regions.forEach((_, slot) => {
      const log = this.vm!.getDirtyLog(slot);
      const page0 = this.spans[slot]!.page0;
      // 32 bits at a time, as numbers (bit i of the log is page i on a little-endian host): no BigInt per bit
      const words = new Uint32Array(log.buffer, log.byteOffset, log.length * 2);
      for (let w = 0; w < words.length; w++) {
        const word = words[w]!;
        if (word === 0) continue;
        for (let b = 0; b < 32; b++) if ((word >>> b) & 1) out[page0 + w * 32 + b] = 1;
      }
    });
    return out;
  }

  /**
   * Marks the used rings of every active virtio queue found in saved states (`usedRing` + `size` of a queue state
   * that is `active`): the device writes them through views kept since activation, which tracking cannot see.
   */
  markQueueRings(states: readonly SavedState[]): void {
    const visit = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(visit);
      if (typeof v !== 'object' || v === null) return;
      const q = v as Record<string, unknown>;
      if (q.active === true && typeof q.usedRing === 'string' && typeof q.size === 'number' && /^\d+$/.test(q.usedRing))
        this.markRange(BigInt(q.usedRing), BigInt(6 + 8 * q.size + 2));
      Object.values(q).forEach(visit);
    };
    visit(states.map((s) => s.data));
  }
}
