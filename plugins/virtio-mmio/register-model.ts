/**
 * A small model of a virtio-mmio (version 2) register file, written from the spec (virtio 1.2 §4.2.2,
 * §2.1, §3.1) and the transport's documented refusals, for the register fuzz test to predict every
 * read value. It shares no code with device.ts or status.ts: only the spec's numbers, written out
 * here. What a device does on its own (serve a queue after a kick) is not predicted: the test tells
 * the model the device's counters, and the model accepts a change only after a kick it saw.
 */

const MAGIC = 0x74726976; // "virt"
const ACKNOWLEDGE = 1,
  DRIVER = 2,
  DRIVER_OK = 4,
  FEATURES_OK = 8,
  NEEDS_RESET = 0x40,
  FAILED = 0x80;
const SETTABLE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | FAILED;
const VRING = 1,
  CONFIG = 2;
const VERSION_1 = 1n << 32n;

interface ModelQueue {
  max: number;
  size: number;
  desc: bigint;
  driver: bigint;
  device: bigint;
  ready: boolean;
}

/** What the model needs to know about the device behind the transport. */
export interface ModelDevice {
  deviceType: number;
  vendorId: number;
  features: bigint;
  queueMax: number[];
  /** Bytes of device config space; reads past it (and odd sizes) give zeros. */
  configSize: number;
  /** Guest memory is [0, memorySize): where a queue's rings must lie. */
  memorySize: number;
}

/** Device-side counters after an access (the transport's metrics and the device's own). */
export interface DeviceCounters {
  interrupts: number;
  needsResets: number;
}

/**
 * The model itself (see the file comment): the test mirrors every access into it (read, write) and checks each read
 * against its prediction; deviceActed accepts what the device did after a kick, or says why not.
 */
export class MmioRegisterModel {
  status = 0;
  driverFeatures = 0n;
  deviceSel = 0;
  driverSel = 0;
  queueSel = 0;
  isr = 0;
  generation = 0;
  active = false;
  /** A kick the device has not yet been seen to answer (it may serve the queue, raise VRING or fail). */
  kicked = false;
  /** Device config bytes the driver wrote (the echo device keeps 4..7). */
  readonly config: Uint8Array;
  queues: ModelQueue[];
  /** What the model expects the device-side counters to be. */
  expected: DeviceCounters = { interrupts: 0, needsResets: 0 };
  /** How often each notable thing happened (the test checks the fuzz reached them). */
  readonly seen = { activations: 0, failedActivations: 0, vringRaised: 0, featuresRefused: 0, acks: 0 };

  constructor(private readonly dev: ModelDevice) {
    this.config = new Uint8Array(dev.configSize);
    this.queues = this.freshQueues();
  }

  private freshQueues(): ModelQueue[] {
    return this.dev.queueMax.map((max) => ({ max, size: max, desc: 0n, driver: 0n, device: 0n, ready: false }));
  }

  private has(bit: number): boolean {
    return (this.status & bit) !== 0;
  }
  private get queuesConfigurable(): boolean {
    return this.has(FEATURES_OK) && !this.has(DRIVER_OK) && !this.has(FAILED) && !this.has(NEEDS_RESET);
  }

  /** The 32-bit value a 4-byte read of register `off` (below 0x100) returns. */
  readRegister(off: number): number {
    const q = this.queues[this.queueSel];
    switch (off) {
      case 0x000:
        return MAGIC;
      case 0x004:
        return 2;
      case 0x008:
        return this.dev.deviceType;
      case 0x00c:
        return this.dev.vendorId;
      case 0x010:
        return this.deviceSel <= 1 ? Number((this.dev.features >> BigInt(32 * this.deviceSel)) & 0xffff_ffffn) : 0;
      case 0x034:
        return q?.max ?? 0;
      case 0x044:
        return q?.ready ? 1 : 0;
      case 0x060:
        return this.isr;
      case 0x070:
        return this.status;
      case 0x0fc:
        return this.generation;
      case 0x0b0:
      case 0x0b4:
      case 0x0b8:
      case 0x0bc:
        return 0xffff_ffff; // no shared memory region
      default:
        return 0; // write-only, reserved or unaligned
    }
  }

  /** The bytes a read of `len` bytes at `off` returns; `echoed` is what the echo device keeps in config bytes 0..3. */
  read(off: number, len: number, echoed: number): Uint8Array {
    const out = new Uint8Array(len);
    if (off >= 0x100) {
      const c = off - 0x100;
      if (![1, 2, 4, 8].includes(len) || c + len > this.dev.configSize) return out;
      const cfg = this.config.slice();
      new DataView(cfg.buffer).setUint32(0, echoed >>> 0, true);
      out.set(cfg.subarray(c, c + len));
      return out;
    }
    if (len === 4) new DataView(out.buffer).setUint32(0, this.readRegister(off) >>> 0, true);
    return out;
  }

  /** Applies a write of `bytes` at `off`. */
  write(off: number, bytes: Uint8Array): void {
    if (off >= 0x100) {
      const c = off - 0x100;
      if (![1, 2, 4, 8].includes(bytes.length) || c + bytes.length > this.dev.configSize) return;
      if (!this.has(DRIVER) || this.has(FAILED)) return;
      if (c >= 4) this.config.set(bytes, c); // the echo device keeps bytes 4..7 only
      return;
    }
    if (bytes.length !== 4) return;
    const v = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    const q = this.queues[this.queueSel];
    switch (off) {
      case 0x014:
        this.deviceSel = v;
        return;
      case 0x024:
        this.driverSel = v;
        return;
      case 0x020:
        if (this.has(DRIVER) && !this.has(FEATURES_OK) && !this.has(FAILED) && this.driverSel <= 1) {
          const shift = BigInt(32 * this.driverSel);
          this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(v) << shift);
        }
        return;
      case 0x030:
        this.queueSel = v;
        return;
      case 0x050:
        if (this.active && v < this.queues.length) this.kicked = true;
        return;
      case 0x064:
        this.isr &= ~v & (VRING | CONFIG);
        this.seen.acks++;
        return;
      case 0x070:
        this.writeStatus(v & 0xff);
        return;
      case 0x044:
        if (q && this.queuesConfigurable) q.ready = v === 1;
        return;
      case 0x038:
      case 0x080:
      case 0x084:
      case 0x090:
      case 0x094:
      case 0x0a0:
      case 0x0a4:
        if (q && this.queuesConfigurable && !q.ready) this.setLayout(q, off, v);
        return;
      default:
        return;
    }
  }

  private setLayout(q: ModelQueue, off: number, v: number): void {
    const lo = (cur: bigint) => (cur & ~0xffff_ffffn) | BigInt(v);
    const hi = (cur: bigint) => (cur & 0xffff_ffffn) | (BigInt(v) << 32n);
    if (off === 0x038) q.size = v;
    else if (off === 0x080) q.desc = lo(q.desc);
    else if (off === 0x084) q.desc = hi(q.desc);
    else if (off === 0x090) q.driver = lo(q.driver);
    else if (off === 0x094) q.driver = hi(q.driver);
    else if (off === 0x0a0) q.device = lo(q.device);
    else q.device = hi(q.device);
  }

  private writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    const old = this.status;
    const requested = v & SETTABLE;
    if (old & SETTABLE & ~requested) return; // a driver never clears a bit: refused
    const added = requested & ~old;
    if (added === 0) return;
    if (added & FAILED) {
      this.status = old | FAILED;
      return;
    } // FAILED wins; nothing else is taken
    if (
      (requested & DRIVER && !(requested & ACKNOWLEDGE)) ||
      (requested & FEATURES_OK && !(requested & DRIVER)) ||
      (requested & DRIVER_OK && !(requested & FEATURES_OK))
    )
      return; // out of order: refused
    const keep = old & NEEDS_RESET;
    if (added & FEATURES_OK) {
      const extra = this.driverFeatures & ~this.dev.features;
      if (extra !== 0n || (this.driverFeatures & VERSION_1) === 0n) {
        this.status = keep | (requested & ~(FEATURES_OK | DRIVER_OK)); // FEATURES_OK stays clear (§3.1.1)
        this.seen.featuresRefused++;
        return;
      }
    }
    if (added & DRIVER_OK && old & NEEDS_RESET) return;
    this.status = keep | requested;
    if (added & DRIVER_OK) this.activate();
  }

  /**
   * DRIVER_OK: every ready queue must have a power-of-two size up to its maximum and aligned rings
   * inside memory (§2.7: descriptors 16 bytes each, 16-aligned; avail 6 + 2n, 2-aligned; used 6 + 8n, 4-aligned).
   */
  private activate(): void {
    const inside = (addr: bigint, align: bigint, bytes: number) =>
      addr % align === 0n && addr + BigInt(bytes) <= BigInt(this.dev.memorySize);
    const sizeOk = (q: ModelQueue) => q.size >= 1 && q.size <= q.max && (q.size & (q.size - 1)) === 0;
    const ok = this.queues.every(
      (q) =>
        !q.ready ||
        (sizeOk(q) &&
          inside(q.desc, 16n, 16 * q.size) &&
          inside(q.driver, 2n, 6 + 2 * q.size) &&
          inside(q.device, 4n, 6 + 8 * q.size)),
    );
    if (ok) {
      this.active = true;
      this.seen.activations++;
    } else {
      this.seen.failedActivations++;
      this.needsReset();
    }
  }

  private needsReset(): void {
    if (this.has(NEEDS_RESET)) return;
    this.expected.needsResets++;
    this.status |= NEEDS_RESET;
    if (this.has(DRIVER_OK)) {
      this.generation = (this.generation + 1) >>> 0;
      this.raise(CONFIG);
    }
  }

  private raise(bit: number): void {
    if (this.status === 0) return;
    this.isr |= bit;
    this.expected.interrupts++;
  }

  private reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceSel = this.driverSel = this.queueSel = 0;
    this.isr = 0;
    this.active = false;
    this.kicked = false;
    this.queues = this.freshQueues();
  }

  /**
   * Takes the device's counters after an access. Without a pending kick they must be what the model
   * expects; after one, the device may have failed (one more needs-reset: NEEDS_RESET, CONFIG) and
   * raised VRING for served chains (more interrupts). Returns a mismatch, or undefined.
   */
  deviceActed(actual: DeviceCounters): string | undefined {
    const e = this.expected;
    if (actual.needsResets === e.needsResets && actual.interrupts === e.interrupts) {
      this.kicked = false;
      return undefined;
    }
    if (!this.kicked) {
      return `device counters ${JSON.stringify(actual)} changed without a kick (model expects ${JSON.stringify(e)})`;
    }
    this.kicked = false;
    if (actual.needsResets === e.needsResets + 1) this.needsReset();
    if (actual.needsResets !== e.needsResets) return `needs-reset count ${actual.needsResets}, model ${e.needsResets}`;
    if (actual.interrupts > e.interrupts) {
      this.isr |= VRING;
      this.seen.vringRaised++;
      e.interrupts = actual.interrupts;
    }
    return actual.interrupts === e.interrupts
      ? undefined
      : `interrupt count ${actual.interrupts}, model ${e.interrupts}`;
  }
}
