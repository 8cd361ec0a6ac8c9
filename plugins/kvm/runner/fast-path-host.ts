import type { Bus, BusRegistration, Disposable } from '../../../core/bus/bus.js';
import { isPioFastPathPublisher, type PioFastPath, type PioWriteMode } from '../../../core/bus/fast-path.js';
import type { Logger } from '../../../core/logger.js';
import { MmioFastPathHost } from './fast-path-mmio-host.js';
import {
  DEFAULT_RING_CAPACITY,
  entry,
  entryRead,
  entryWrite,
  PORTS,
  PortTable,
  RING_HDR,
  TxRing,
  WRITE,
  type WriteAction,
} from './fast-path.js';

/** How a runner's FastPathHost builds its port table: unclaimed ports, TX ring capacity (entries), a logger. */
export interface FastPathHostOptions {
  /** Unclaimed ports: writes dropped, reads answer 0xff on the worker (what the Bus does with them). Default true. */
  ignoreUnclaimed?: boolean;
  ringCapacity?: number;
  logger?: Logger;
}

const WRITE_MODES: Record<PioWriteMode, WriteAction> = { device: WRITE.HOP, queue: WRITE.RING, drop: WRITE.DROP };

/**
 * The handle one device publishes through; inert once detached. Keeps what it published so the table can be rebuilt.
 */
class DeviceFastPath implements PioFastPath {
  active = true;
  readonly published = new Map<number, number>();
  constructor(
    private readonly table: PortTable,
    readonly base: number,
    readonly length: number,
  ) {}

  private put(offset: number, e: number): void {
    if (!this.active || !Number.isInteger(offset) || offset < 0 || offset >= this.length) return;
    if (e === 0) this.published.delete(offset);
    else this.published.set(offset, e);
    this.table.set(this.base + offset, e);
  }

  setReadValue(offset: number, value: number | undefined): void {
    const cur = this.published.get(offset) ?? 0;
    const v = value !== undefined && Number.isInteger(value) && value >= 0 && value <= 0xff ? value : undefined;
    this.put(offset, entry(v, entryWrite(cur)));
  }

  setWriteMode(offset: number, mode: PioWriteMode): void {
    const cur = this.published.get(offset) ?? 0;
    this.put(offset, entry(entryRead(cur), WRITE_MODES[mode] ?? WRITE.HOP));
  }
}

interface Attached {
  reg: BusRegistration;
  fp: DeviceFastPath;
  handle?: Disposable;
}

/**
 * The main thread's side of the worker fast paths (./fast-path.ts): owns the port table and
 * one TX ring per vCPU, fills the table for unclaimed ports, attaches every PIO device that
 * publishes fast paths (core/bus/fast-path.ts), follows later bus (un)registrations, and
 * drains the rings into the Bus. The runner drains before it handles any exit, so devices
 * see queued writes in program order, before whatever the vCPU did next.
 */
export class FastPathHost {
  readonly table = new PortTable();
  readonly rings: TxRing[] = [];
  /** Queued writes delivered to the Bus. */
  drained = 0;
  private attached: Attached[] = [];
  /** The registrations the table was last built from; undefined = never built (an empty Bus must still build it). */
  private known: readonly BusRegistration[] | undefined;
  private draining = false;
  /** Whether the port table was ever built (see syncPio). */
  private built = false;
  private readonly one = new Uint8Array(1);
  private readonly ignoreUnclaimed: boolean;
  /** MMIO registers devices published (./fast-path-mmio.ts); their queued writes share the rings. */
  readonly mmio: MmioFastPathHost;

  constructor(
    private readonly bus: Bus,
    private readonly opts: FastPathHostOptions = {},
  ) {
    this.ignoreUnclaimed = opts.ignoreUnclaimed ?? true;
    this.mmio = new MmioFastPathHost(bus, opts.logger);
  }

  addRing(): TxRing {
    const r = TxRing.create(this.opts.ringCapacity ?? DEFAULT_RING_CAPACITY);
    this.rings.push(r);
    return r;
  }

  /** Rebuilds the tables when the PIO or MMIO registrations changed since the last call (cheap when they did not). */
  sync(): void {
    this.mmio.sync(() => this.drainAll());
    this.syncPio();
  }

  private syncPio(): void {
    const regs = this.bus.registrations('pio');
    const known = this.known;
    if (known && regs.length === known.length && regs.every((r, i) => r === known[i])) return;
    this.drainAll(); // queued writes go where they would have gone before the change
    this.known = regs;
    const keep: Attached[] = [];
    for (const a of this.attached) {
      if (regs.includes(a.reg)) {
        keep.push(a);
        continue;
      }
      a.fp.active = false;
      try {
        a.handle?.dispose();
      } catch (err) {
        this.opts.logger?.warn({ err, device: a.reg.name }, 'fast path: detach failed');
      }
    }
    this.attached = keep;
    // Base layer: unclaimed ports ignored, claimed ports hop; then what devices published.
    const base = entry(this.ignoreUnclaimed ? 0xff : undefined, this.ignoreUnclaimed ? WRITE.DROP : WRITE.HOP);
    const words = new Int32Array(PORTS).fill(base);
    for (const r of regs) {
      const start = Number(r.range.start.value),
        end = Math.min(Number(r.range.end), PORTS);
      words.fill(0, start, end);
    }
    for (const a of this.attached) for (const [off, e] of a.fp.published) words[a.fp.base + off] = e;
    const table = this.table.words;
    if (!this.built) {
      // The first build writes the whole table at once: no vCPU thread reads it before (the runner hands it over
      // after sync()). 64 Ki single stores took ~150 ms of a start in the nested sandbox (issue 18).
      table.set(words);
      this.built = true;
    } else {
      // Only this thread writes the table; the vCPU threads read it with Atomics.load.
      for (let p = 0; p < PORTS; p++) if (table[p] !== words[p]) Atomics.store(table, p, words[p]!);
    }
    for (const r of regs) {
      if (!isPioFastPathPublisher(r.device) || this.attached.some((a) => a.reg === r)) continue;
      const fp = new DeviceFastPath(
        this.table,
        Number(r.range.start.value),
        Math.min(Number(r.range.length), PORTS - Number(r.range.start.value)),
      );
      const a: Attached = { reg: r, fp };
      this.attached.push(a);
      try {
        a.handle = r.device.attachPioFastPath(fp);
      } catch (err) {
        fp.active = false;
        for (const off of fp.published.keys()) this.table.set(fp.base + off, 0);
        this.opts.logger?.warn(
          { err, device: r.name },
          'fast path: device failed to attach; its accesses take the normal path',
        );
      }
    }
  }

  /** Delivers every queued write of every vCPU to the Bus, in each vCPU's program order. Never throws. */
  drainAll(): void {
    if (this.draining) return; // a device that somehow re-enters: its writes are already being delivered in order
    this.draining = true;
    try {
      for (const r of this.rings)
        if (r.length > 0 || Atomics.load(r.hdr, RING_HDR.PENDING) !== 0)
          this.drained += r.drain(this.deliver, this.mmio.deliver);
    } finally {
      this.draining = false;
    }
  }

  private readonly deliver = (port: number, byte: number): void => {
    this.one[0] = byte;
    try {
      this.bus.write('pio', BigInt(port), this.one);
    } catch (err) {
      this.opts.logger?.error({ err, port }, 'fast path: delivering a queued write failed');
    }
  };

  /** Counters for the exit statistics. */
  summary(): { drained: number; ringFull: number; ringNotifies: number; devices: string[] } {
    return {
      drained: this.drained,
      ringFull: this.rings.reduce((a, r) => a + r.fullCount, 0),
      ringNotifies: this.rings.reduce((a, r) => a + r.notifyCount, 0),
      devices: [...this.attached.filter((a) => a.fp.active).map((a) => a.reg.name), ...this.mmio.devices],
    };
  }

  dispose(): void {
    this.drainAll();
    for (const a of this.attached) {
      a.fp.active = false;
      try {
        a.handle?.dispose();
      } catch {
        /* the device is going away anyway */
      }
    }
    this.attached = [];
    this.known = undefined;
    this.table.words.fill(0);
    this.mmio.dispose();
  }
}
