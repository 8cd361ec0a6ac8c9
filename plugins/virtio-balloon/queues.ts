import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { DescriptorChain, VirtioActivation, VirtQueue } from '../../core/virtio/virtio.js';
import { ChainReader } from '../virtio/chain-io.js';
import { ServedQueue } from '../virtio/served-queue.js';
import {
  BALLOON_PAGE,
  CHAINS_PER_TURN,
  MAX_PFNS_PER_CHAIN,
  MAX_STAT_ENTRIES,
  STAT_ENTRY_SIZE,
  STAT_NAMES,
  VIRTIO_BALLOON_F_REPORTING,
  VIRTIO_BALLOON_F_STATS_VQ,
} from './constants.js';
import type { GuestPages } from './release.js';

/** What the queues hand to the device. */
export interface BalloonQueueHooks {
  /** Pages the guest put into the balloon (4 KiB each, in guest-physical ranges). */
  inflate(pages: GuestPages[]): void;
  /** How many pages the guest took back. */
  deflate(count: number): void;
  /** Free guest memory the guest reported (page-aligned ranges). */
  report(pages: GuestPages[]): void;
  /** A statistics buffer arrived (by name). */
  stats(s: Record<string, number>): void;
  /** A request the device ignored (what was wrong). */
  invalid(what: string): void;
}

const PAGE = BigInt(BALLOON_PAGE);
type Kind = 'inflate' | 'deflate' | 'stats' | 'report';

/**
 * The balloon's queues for one activation. Their indexes follow the negotiated features, as the
 * Linux driver and QEMU number them: inflateq 0, deflateq 1, then statsq when STATS_VQ was
 * negotiated, then reporting_vq when REPORTING was (a queue whose feature is off takes no index).
 * Each queue is a ServedQueue: a broken ring or a buffer outside guest memory stops it and asks
 * for DEVICE_NEEDS_RESET. Chains whose direction is wrong (inflate/deflate/stats must be
 * device-readable, reports device-writable) are returned unused and counted (`invalid`).
 */
export class BalloonQueues {
  private readonly served = new Map<Kind, ServedQueue>();
  private readonly watches: Disposable[] = [];
  private statsHead?: number;
  private scheduled = false;

  constructor(
    private readonly a: VirtioActivation,
    private readonly hooks: BalloonQueueHooks,
    loop?: EventLoop,
    private readonly defer: (cb: () => void) => void = (cb) => void setImmediate(cb),
    restoredStatsHead?: number,
  ) {
    const kinds: Kind[] = ['inflate', 'deflate'];
    if (a.features & VIRTIO_BALLOON_F_STATS_VQ) kinds.push('stats');
    if (a.features & VIRTIO_BALLOON_F_REPORTING) kinds.push('report');
    kinds.forEach((kind, i) => {
      const queue: VirtQueue | undefined = a.queues[i];
      if (!queue) return;
      this.served.set(
        kind,
        new ServedQueue({ queue, interrupt: a.interrupt, needsReset: a.needsReset, label: `${kind} queue` }),
      );
      const ev = a.queueEvents[i];
      if (ev && loop)
        this.watches.push(
          loop.watch(ev.fd, { readable: true }, () => {
            ev.read();
            this.processAll();
          }),
        );
    });
    this.statsHead = restoredStatsHead;
  }

  /** Whether the driver set up a statistics queue. */
  get hasStats(): boolean {
    return this.served.has('stats');
  }

  /** The statistics chain the device holds (returned when it wants fresh numbers), if any. */
  get heldStatsHead(): number | undefined {
    return this.statsHead;
  }

  /** Serves every queue (each bounded by CHAINS_PER_TURN; the rest on a later turn). */
  processAll(): void {
    let more = false;
    for (const [kind, s] of this.served) more = this.serve(kind, s) || more;
    if (more && !this.scheduled) {
      this.scheduled = true;
      this.defer(() => {
        this.scheduled = false;
        this.processAll();
      });
    }
  }

  /** Gives the held statistics chain back so the driver refills it (the device asks for fresh numbers). */
  releaseStats(): void {
    const s = this.served.get('stats');
    if (!s || s.stopped || this.statsHead === undefined) return;
    const head = this.statsHead;
    this.statsHead = undefined;
    s.serve(() => s.addUsed(head, 0));
  }

  /** Returns true when chains were left for a later turn. */
  private serve(kind: Kind, s: ServedQueue): boolean {
    if (s.stopped) return false;
    let handled = 0;
    let more = false;
    s.serve(() => {
      const q = s.queue;
      do {
        q.disableNotification();
        for (let c = q.pop(); c; c = q.pop()) {
          if (this.handle(kind, s, c)) s.addUsed(c.head, 0);
          if (++handled >= CHAINS_PER_TURN) {
            more = true;
            return;
          }
        }
      } while (q.enableNotification());
    });
    return more;
  }

  /** Handles one chain; false when the device keeps it (the statistics buffer). */
  private handle(kind: Kind, s: ServedQueue, c: DescriptorChain): boolean {
    switch (kind) {
      case 'inflate':
      case 'deflate': {
        const pfns = this.readPfns(c, kind);
        if (kind === 'inflate') this.hooks.inflate(pfns.map((p) => ({ start: p * PAGE, length: PAGE })));
        else this.hooks.deflate(pfns.length);
        return true;
      }
      case 'report':
        this.hooks.report(this.reportedRanges(c));
        return true;
      case 'stats': {
        this.hooks.stats(this.readStats(c));
        if (this.statsHead !== undefined) {
          // A driver that sends a second buffer while the device holds one: give the old one back.
          s.addUsed(this.statsHead, 0);
        }
        this.statsHead = c.head;
        return false;
      }
    }
  }

  private readPfns(c: DescriptorChain, kind: Kind): bigint[] {
    if (c.writableLength > 0) this.hooks.invalid(`${kind} chain ${c.head} has device-writable buffers (ignored)`);
    if (c.readableLength % 4 !== 0)
      this.hooks.invalid(`${kind} chain ${c.head}: ${c.readableLength} bytes is not whole PFNs`);
    const n = Math.min(Math.floor(c.readableLength / 4), MAX_PFNS_PER_CHAIN);
    if (n === 0) return [];
    const bytes = new ChainReader(this.a.memory, c).read(n * 4);
    const dv = new DataView(bytes.buffer);
    const out: bigint[] = [];
    for (let i = 0; i < n; i++) out.push(BigInt(dv.getUint32(i * 4, true)));
    return out;
  }

  /** The free page ranges of a report: its device-writable buffers, trimmed to whole 4 KiB pages. */
  private reportedRanges(c: DescriptorChain): GuestPages[] {
    if (c.readableLength > 0) this.hooks.invalid(`report chain ${c.head} has device-readable buffers (ignored)`);
    const out: GuestPages[] = [];
    for (const b of c.writable) {
      const start = (b.addr.value + PAGE - 1n) & ~(PAGE - 1n);
      const end = (b.addr.value + BigInt(b.len)) & ~(PAGE - 1n);
      if (end > start) out.push({ start, length: end - start });
    }
    return out;
  }

  private readStats(c: DescriptorChain): Record<string, number> {
    if (c.writableLength > 0) this.hooks.invalid(`stats chain ${c.head} has device-writable buffers (ignored)`);
    const n = Math.min(Math.floor(c.readableLength / STAT_ENTRY_SIZE), MAX_STAT_ENTRIES);
    const out: Record<string, number> = {};
    if (n === 0) return out;
    const bytes = new ChainReader(this.a.memory, c).read(n * STAT_ENTRY_SIZE);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      const tag = dv.getUint16(i * STAT_ENTRY_SIZE, true);
      const name = STAT_NAMES[tag];
      const v = dv.getBigUint64(i * STAT_ENTRY_SIZE + 2, true);
      if (name) out[name] = v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    }
    return out;
  }

  /** Stops every queue: nothing touches them or guest memory afterwards. */
  stop(): void {
    for (const w of this.watches) w.dispose();
    this.watches.length = 0;
    for (const s of this.served.values()) s.stop();
  }
}
