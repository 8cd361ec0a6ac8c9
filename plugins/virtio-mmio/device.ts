import type { BusDevice, Disposable } from '../../core/bus/bus.js';
import type { MmioFastPath, MmioFastPathPublisher, SharedWord } from '../../core/bus/fast-path.js';
import { hasCounters, type Device } from '../../core/device/device.js';
import { prefixCounters } from '../../core/device/counters.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import type { EventFd } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { VirtioDevice, VirtioInterrupt } from '../../core/virtio/virtio.js';
import { DeviceStatus } from '../virtio/constants.js';
import type { SplitQueue } from '../virtio/split-queue.js';
import type { DeviceNegotiation } from '../virtio/status.js';
import { VirtioSession } from '../virtio/session.js';
import type { VirtioMmioMetrics } from './metrics.js';
import { newMetrics } from './metrics.js';
import { INT_CONFIG, INT_VRING, MMIO_MAGIC, MMIO_VENDOR_ID, MMIO_VERSION, Reg } from './registers.js';
import { checkTransport, loadTransport, saveTransport, TransportStateSpec, type TransportState } from './state.js';

/** How the transport reaches the driver's interrupt controller. */
export interface InterruptLine {
  /** Edge: signal the line once (irqfd write, or a pulse on the irqchip pin). */
  trigger(): void;
}

/** What a VirtioMmioTransport works with: guest memory, the per-queue notify eventfds, its interrupt line, a logger. */
export interface MmioTransportDeps {
  /** Guest memory, resolved when the driver sets DRIVER_OK. */
  memory: () => GuestMemory;
  /** One eventfd per queue: the ioeventfd KVM signals, and what a bus-path QueueNotify writes. */
  queueEvents: EventFd[];
  line: InterruptLine;
  logger?: Logger;
}

const u32 = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, true);
const put32 = (d: Uint8Array, v: number): void =>
  new DataView(d.buffer, d.byteOffset, d.byteLength).setUint32(0, v >>> 0, true);

/**
 * The virtio-mmio (version 2) register window of one VirtioDevice. It runs the
 * status state machine and feature negotiation, holds the driver's queue layout,
 * activates the device at DRIVER_OK and raises interrupts. Guest accesses never
 * throw: a wrong size, a write to a read-only register or a write in the wrong
 * state is ignored and counted; a misbehaving driver gets DEVICE_NEEDS_RESET.
 */
export class VirtioMmioTransport implements BusDevice, Device, Snapshottable<TransportState>, MmioFastPathPublisher {
  readonly id: string;
  readonly stateSpec = TransportStateSpec;
  readonly metrics: VirtioMmioMetrics = newMetrics();
  /**
   * Contract C4 (core/device Countable): the device's own counters (when its VirtioDevice has them) and this
   * transport's, prefixed `transport.`: the registry lists the transport, so vm.counters sees the device through it.
   */
  counters(): Record<string, number> {
    const own = hasCounters(this.device) ? this.device.counters() : {};
    return { ...own, ...prefixCounters('transport', { ...this.metrics }) };
  }
  readonly interrupt: VirtioInterrupt;
  /** Status, features, queues and activation (plugins/virtio's transport-neutral half). */
  readonly session: VirtioSession;
  deviceFeaturesSel = 0;
  driverFeaturesSel = 0;
  queueSel = 0;
  configGeneration = 0;
  /** InterruptStatus while no runner shares a word for it. */
  private localStatus = 0;
  /** A guest can make a device callback fail on every access: those warnings are rate-limited. */
  private readonly logLimit = new LogRateLimiter();
  /**
   * InterruptStatus in a word shared with the vCPU threads (MmioFastPath.shareClearableWord):
   * raise() sets bits with an atomic OR before the irqfd fires; a guest's InterruptACK clears bits
   * with an atomic AND at the moment of the write, on the vCPU's thread or (hopped) here. Kept for
   * good once obtained: a vCPU may still act on it after the fast path is detached.
   */
  private statusWord: SharedWord | undefined;
  /** A runner's worker fast path (core/bus/fast-path.ts), when one is attached. */
  private fastPath: MmioFastPath | undefined;

  constructor(
    readonly device: VirtioDevice,
    private readonly deps: MmioTransportDeps,
  ) {
    this.id = `virtio-mmio:${device.id}`;
    this.interrupt = {
      signalUsedQueue: () => this.raise(INT_VRING),
      signalConfigChange: () => {
        this.configGeneration = (this.configGeneration + 1) >>> 0;
        this.raise(INT_CONFIG);
      },
    };
    this.session = new VirtioSession(device, {
      memory: deps.memory,
      queueEvents: deps.queueEvents,
      interrupt: this.interrupt,
      transport: 'virtio-mmio',
      logger: deps.logger,
      counters: this.metrics,
    });
  }

  /** The split queues whose layout the driver writes. */
  get queues(): readonly SplitQueue[] {
    return this.session.queues;
  }
  /** Device status and feature negotiation. */
  get negotiation(): DeviceNegotiation {
    return this.session.negotiation;
  }
  get activated(): boolean {
    return this.session.activated;
  }
  get interruptStatus(): number {
    return this.statusWord ? this.statusWord.load() : this.localStatus;
  }
  set interruptStatus(v: number) {
    const w = (v >>> 0) & (INT_VRING | INT_CONFIG);
    if (this.statusWord) this.statusWord.store(w);
    else this.localStatus = w;
  }
  /** True while InterruptStatus lives in a shared word (reads and ACKs complete on the vCPU's thread). */
  get sharesInterruptStatus(): boolean {
    return this.statusWord !== undefined;
  }
  get status(): number {
    return this.negotiation.status;
  }

  // ---- worker fast path ---------------------------------------------------

  /**
   * Preferred: InterruptStatus moves into a word shared with the vCPU threads
   * (fp.shareClearableWord): InterruptStatus reads and InterruptACK writes both complete on the
   * vCPU's thread, atomically at the moment of the access, so an interrupt costs no main-thread hop
   * and an ACK clears only bits the guest writes back (no bit raised after its read).
   * Fallback (a runner without shared words): while the device is active, InterruptStatus reads
   * are answered from the published value (republished whenever it changes, before the interrupt
   * fires), and InterruptACK writes are NOT queued: a deferred ACK would clear a bit that a
   * completion set after the guest's read, so the guest's next interrupt would find
   * InterruptStatus 0, skip its queues and wait forever (seen as a hung virtio-blk guest in the
   * sandbox). The ACK hops and takes effect at once.
   * The interrupt line is an edge (irqfd without resample, or a pulse): nothing waits for an ACK
   * to lower it, so the device never depends on seeing the ACK on this thread.
   */
  attachMmioFastPath(fp: MmioFastPath): Disposable {
    this.fastPath = fp;
    try {
      const word = fp.shareClearableWord?.(
        Reg.InterruptStatus,
        Reg.InterruptACK,
        INT_VRING | INT_CONFIG,
        this.interruptStatus,
      );
      if (word) this.statusWord = word;
    } catch (err) {
      this.deps.logger?.warn(
        { err, device: this.device.id },
        'virtio-mmio: shared InterruptStatus refused; using the published value',
      );
    }
    this.publishFast();
    return {
      dispose: () => {
        if (this.fastPath === fp) this.fastPath = undefined;
      },
    };
  }

  private publishFast(): void {
    const fp = this.fastPath;
    if (!fp || this.statusWord) return; // a shared word needs no publishing
    try {
      const on = this.activated;
      fp.setReadValue(Reg.InterruptStatus, on ? this.interruptStatus >>> 0 : undefined);
      fp.setWriteMode(Reg.InterruptACK, 'device');
    } catch (err) {
      this.deps.logger?.warn({ err, device: this.device.id }, 'virtio-mmio fast path publish failed');
    }
  }

  // ---- bus side -----------------------------------------------------------

  read(offset: bigint, data: Uint8Array): void {
    data.fill(0);
    try {
      if (offset >= BigInt(Reg.Config)) {
        this.readConfig(Number(offset) - Reg.Config, data);
        return;
      }
      if (data.length !== 4) {
        this.metrics.ignoredAccesses++;
        return;
      }
      const v = this.readRegister(Number(offset));
      if (v === undefined) this.metrics.ignoredAccesses++;
      else put32(data, v);
    } catch (err) {
      // A device callback threw (readConfig); the guest reads zeros and the VMM goes on.
      this.logLimit.log('read', (suppressed) =>
        this.deps.logger?.warn(
          { err, device: this.device.id, suppressed },
          `virtio-mmio read failed${suppressedNote(suppressed)}`,
        ),
      );
      data.fill(0);
    }
  }

  write(offset: bigint, data: Uint8Array): void {
    try {
      if (offset >= BigInt(Reg.Config)) {
        this.writeConfig(Number(offset) - Reg.Config, data);
        return;
      }
      if (data.length !== 4 || !this.writeRegister(Number(offset), u32(data))) this.metrics.ignoredAccesses++;
    } catch (err) {
      this.logLimit.log('write', (suppressed) =>
        this.deps.logger?.warn(
          { err, device: this.device.id, suppressed },
          `virtio-mmio write failed${suppressedNote(suppressed)}`,
        ),
      );
      this.needsReset(`register write at 0x${offset.toString(16)} failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private get selectedQueue(): SplitQueue | undefined {
    return this.queues[this.queueSel];
  }

  private readRegister(off: number): number | undefined {
    switch (off) {
      case Reg.MagicValue:
        return MMIO_MAGIC;
      case Reg.Version:
        return MMIO_VERSION;
      case Reg.DeviceID:
        return this.device.deviceType;
      case Reg.VendorID:
        return MMIO_VENDOR_ID;
      case Reg.DeviceFeatures:
        return this.negotiation.deviceFeatureWord(this.deviceFeaturesSel);
      case Reg.QueueNumMax:
        return this.selectedQueue?.maxSize ?? 0;
      case Reg.QueueReady:
        return this.selectedQueue?.ready ? 1 : 0;
      case Reg.InterruptStatus:
        return this.interruptStatus;
      case Reg.Status:
        return this.session.driverStatus; // not 0 while a reset waits for requests in flight
      case Reg.ConfigGeneration:
        return this.configGeneration;
      // No shared memory regions: a length of -1 says "none".
      case Reg.SHMLenLow:
      case Reg.SHMLenHigh:
      case Reg.SHMBaseLow:
      case Reg.SHMBaseHigh:
        return 0xffff_ffff;
      default:
        return undefined;
    }
  }

  /** Applies a 32-bit register write; false when it was ignored. */
  private writeRegister(off: number, v: number): boolean {
    const n = this.negotiation;
    switch (off) {
      case Reg.DeviceFeaturesSel:
        this.deviceFeaturesSel = v;
        return true;
      case Reg.DriverFeaturesSel:
        this.driverFeaturesSel = v;
        return true;
      case Reg.DriverFeatures:
        return n.setDriverFeatureWord(this.driverFeaturesSel, v);
      case Reg.QueueSel:
        this.queueSel = v;
        return true;
      case Reg.QueueNotify:
        return this.notify(v);
      case Reg.InterruptACK:
        if (this.statusWord) this.statusWord.clear(v & (INT_VRING | INT_CONFIG));
        else {
          this.localStatus &= ~v & (INT_VRING | INT_CONFIG);
          this.publishFast();
        }
        return true;
      case Reg.Status:
        return this.writeStatus(v);
      case Reg.SHMSel:
        return true;
      case Reg.QueueReady: {
        const q = this.selectedQueue;
        if (!q || !n.queuesConfigurable) return false;
        q.ready = v === 1;
        return true;
      }
      case Reg.QueueNum:
      case Reg.QueueDescLow:
      case Reg.QueueDescHigh:
      case Reg.QueueDriverLow:
      case Reg.QueueDriverHigh:
      case Reg.QueueDeviceLow:
      case Reg.QueueDeviceHigh: {
        const q = this.selectedQueue;
        // The layout may change only while the queue is not ready, before DRIVER_OK.
        if (!q || !n.queuesConfigurable || q.ready) return false;
        this.setQueueField(q, off, v);
        return true;
      }
      default:
        return false; // read-only or unknown
    }
  }

  private setQueueField(q: SplitQueue, off: number, v: number): void {
    const lo = (cur: bigint): bigint => (cur & ~0xffff_ffffn) | BigInt(v >>> 0);
    const hi = (cur: bigint): bigint => (cur & 0xffff_ffffn) | (BigInt(v >>> 0) << 32n);
    switch (off) {
      case Reg.QueueNum:
        q.size = v >>> 0;
        break;
      case Reg.QueueDescLow:
        q.descTable = lo(q.descTable);
        break;
      case Reg.QueueDescHigh:
        q.descTable = hi(q.descTable);
        break;
      case Reg.QueueDriverLow:
        q.availRing = lo(q.availRing);
        break;
      case Reg.QueueDriverHigh:
        q.availRing = hi(q.availRing);
        break;
      case Reg.QueueDeviceLow:
        q.usedRing = lo(q.usedRing);
        break;
      case Reg.QueueDeviceHigh:
        q.usedRing = hi(q.usedRing);
        break;
    }
  }

  /** A QueueNotify that reached the bus (no ioeventfd matched): hand it to the device like the ioeventfd would. */
  private notify(v: number): boolean {
    this.metrics.busNotifications++;
    if (!this.activated || v >= this.queues.length) return false;
    this.deps.queueEvents[v].write(1n);
    return true;
  }

  private readConfig(off: number, data: Uint8Array): void {
    if (!this.configAccessOk(off, data.length)) {
      this.metrics.ignoredAccesses++;
      return;
    }
    this.device.readConfig(off, data);
  }

  private writeConfig(off: number, data: Uint8Array): void {
    const n = this.negotiation;
    if (!this.configAccessOk(off, data.length) || !n.has(DeviceStatus.DRIVER) || n.has(DeviceStatus.FAILED)) {
      this.metrics.ignoredAccesses++;
      return;
    }
    this.device.writeConfig(off, data.slice());
  }

  private configAccessOk(off: number, len: number): boolean {
    if (![1, 2, 4, 8].includes(len)) return false;
    const size = this.device.configSize;
    return size === undefined ? off + len <= 0x1000 - Reg.Config : off + len <= size;
  }

  // ---- status, activation, reset ------------------------------------------

  private writeStatus(v: number): boolean {
    switch (this.session.writeStatus(v)) {
      case 'reset':
        this.resetRegisters();
        return true;
      case 'activate':
        this.publishFast();
        return true;
      case 'none':
        return true;
      default:
        return false; // ignored: counted and logged by the session
    }
  }

  /** Marks DEVICE_NEEDS_RESET; after DRIVER_OK the driver learns it through a config-change interrupt. */
  needsReset(reason: string): void {
    this.session.needsReset(reason);
  }

  /** Driver wrote 0 to Status (or the VMM resets): back to power-on state. */
  reset(): void {
    this.session.reset();
    this.resetRegisters();
  }

  private resetRegisters(): void {
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.interruptStatus = 0;
    this.publishFast();
  }

  private raise(bit: number): void {
    if (this.negotiation.status === 0) return; // a reset device does not interrupt
    if (this.statusWord)
      this.statusWord.or(bit); // atomic, before the line fires
    else {
      this.localStatus |= bit;
      this.publishFast();
    } // before the line: the driver's handler may read it on a worker at once
    this.metrics.interrupts++;
    this.deps.line.trigger();
  }

  // ---- snapshots ------------------------------------------------------------

  saveState(): TransportState {
    return saveTransport(this);
  }

  checkState(s: TransportState): void {
    checkTransport(this, s);
  }

  /** Applies a validated state (core/state's restoreSnapshot validates untrusted input first). */
  loadState(state: TransportState): void {
    this.session.stop();
    const s = loadTransport(this, state);
    if (s.activated) this.session.activate(s.progress);
    this.publishFast();
  }

  /** Internal to restore: applies validated fields. */
  applyRestored(fields: {
    status: number;
    driverFeatures: bigint;
    deviceFeaturesSel: number;
    driverFeaturesSel: number;
    queueSel: number;
    interruptStatus: number;
    configGeneration: number;
  }): void {
    this.session.loadNegotiation({ status: fields.status, driverFeatures: fields.driverFeatures });
    this.deviceFeaturesSel = fields.deviceFeaturesSel;
    this.driverFeaturesSel = fields.driverFeaturesSel;
    this.queueSel = fields.queueSel;
    this.interruptStatus = fields.interruptStatus;
    this.configGeneration = fields.configGeneration;
  }
}
