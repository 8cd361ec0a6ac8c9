import type { EventFd } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { suppressedNote } from '../../core/ratelimit/log-limiter.js';
import type { VirtioDevice, VirtioInterrupt } from '../../core/virtio/virtio.js';
import { DeviceStatus } from '../virtio/constants.js';
import type { SplitQueue } from '../virtio/split-queue.js';
import { VirtioSession } from '../virtio/session.js';
import { readCommon, writeCommon } from './common-cfg.js';
import { ISR_CONFIG, ISR_QUEUE, NOTIFY_OFF_MULTIPLIER, Region, VIRTIO_MSI_NO_VECTOR } from './layout.js';
import { newMetrics, type VirtioPciMetrics } from './metrics.js';

/** How the transport's interrupts reach the driver; the PCI function provides it (MSI-X table, INTx pin). */
export interface PciInterruptSink {
  /** Whether the guest enabled MSI-X (message control bit 15); otherwise INTx is used. */
  readonly msixEnabled: boolean;
  /** Entries in the MSI-X table: valid vectors are 0..msixSize-1. */
  readonly msixSize: number;
  /** Sends vector `v` through the MSI-X table (a masked vector becomes pending there). */
  msix(v: number): void;
  /** Drives the INTx pin (level); nothing happens while the guest disabled INTx or the function has no line. */
  intx(level: boolean): void;
  /** The irqfd behind MSI-X vector `v`, when one is wired (for a back end that interrupts by itself). */
  notifier?(v: number): EventFd | undefined;
}

/** What a VirtioPciTransport works with. */
export interface PciTransportDeps {
  /** Guest memory, resolved when the driver sets DRIVER_OK. */
  memory: () => GuestMemory;
  /** One eventfd per queue: the ioeventfd the hypervisor signals, and what a trapped notify writes. */
  queueEvents: EventFd[];
  irq: PciInterruptSink;
  logger?: Logger;
}

/**
 * The virtio side of one virtio-pci function (virtio 1.2 §4.1.4): the common configuration structure,
 * the notify region, the ISR status byte and the device-specific configuration, over a VirtioSession
 * (status, features, queues, activation). Interrupts go to one MSI-X vector per queue plus one for
 * configuration changes (msix_config / queue_msix_vector) when the guest enabled MSI-X, else to the
 * INTx line with the ISR byte (read clears, the line drops; the PCI function re-asserts it after each EOI
 * while set). Guest accesses never throw: a wrong width
 * or unknown offset is ignored and counted; a write the rules forbid (queue layout after DRIVER_OK, a
 * vector outside the table, a queue size above the maximum) is refused and logged (rate-limited).
 */
export class VirtioPciTransport {
  readonly session: VirtioSession;
  readonly metrics: VirtioPciMetrics = newMetrics();
  readonly interrupt: VirtioInterrupt;
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  queueSelect = 0;
  msixConfig = VIRTIO_MSI_NO_VECTOR;
  queueVectors: number[];
  isr = 0;
  /** 8 bits on PCI; bumped by every configuration change the device announces. */
  configGeneration = 0;

  constructor(
    readonly device: VirtioDevice,
    private readonly deps: PciTransportDeps,
  ) {
    this.interrupt = {
      signalUsedQueue: (q: number) => this.raise(ISR_QUEUE, this.queueVectors[q] ?? VIRTIO_MSI_NO_VECTOR),
      signalConfigChange: () => {
        this.configGeneration = (this.configGeneration + 1) & 0xff;
        this.raise(ISR_CONFIG, this.msixConfig);
      },
    };
    this.session = new VirtioSession(device, {
      memory: deps.memory,
      queueEvents: deps.queueEvents,
      interrupt: this.interrupt,
      transport: 'virtio-pci',
      logger: deps.logger,
      callEvents: () => this.callEvents(),
    });
    this.queueVectors = device.queueMaxSizes.map(() => VIRTIO_MSI_NO_VECTOR);
  }

  get queues(): readonly SplitQueue[] {
    return this.session.queues;
  }
  get activated(): boolean {
    return this.session.activated;
  }
  get msixSize(): number {
    return this.deps.irq.msixSize;
  }

  /** The queue the driver selected, or undefined when queue_select names none. */
  get selectedQueue(): SplitQueue | undefined {
    return this.session.queues[this.queueSelect];
  }

  /**
   * Per queue, the irqfd of its MSI-X vector (vhost-user hands it to the back end as the call fd); undefined
   * in INTx mode (the ISR must be set first) and for a queue without a vector.
   */
  callEvents(): (EventFd | undefined)[] {
    const irq = this.deps.irq;
    return this.queueVectors.map((v) =>
      irq.msixEnabled && v !== VIRTIO_MSI_NO_VECTOR && v < irq.msixSize ? irq.notifier?.(v) : undefined,
    );
  }

  // ---- BAR regions ------------------------------------------------------------

  /** A read of the common configuration structure; ignored accesses read 0. */
  readCommon(off: number, data: Uint8Array): void {
    data.fill(0);
    const v = readCommon(this, off, data.length);
    if (v === undefined) this.metrics.ignoredAccesses++;
    else putLe(data, v);
  }

  /** A write to the common configuration structure. */
  writeCommon(off: number, data: Uint8Array): void {
    if (!writeCommon(this, off, data.length, getLe(data))) this.metrics.ignoredAccesses++;
  }

  /** ISR status: reading returns the bits and clears them, dropping the INTx line (virtio 1.2 §4.1.4.5). */
  readIsr(off: number, data: Uint8Array): void {
    data.fill(0);
    if (off !== 0) {
      this.metrics.ignoredAccesses++;
      return;
    }
    data[0] = this.isr;
    if (this.isr !== 0) {
      this.isr = 0;
      this.deps.irq.intx(false);
    }
  }

  /** The device-specific configuration, bounded by the device's configSize. */
  readDevice(off: number, data: Uint8Array): void {
    data.fill(0);
    if (!this.deviceAccessOk(off, data.length)) {
      this.metrics.ignoredAccesses++;
      return;
    }
    this.device.readConfig(off, data);
  }

  /** Device configuration writes need DRIVER set and no FAILED. */
  writeDevice(off: number, data: Uint8Array): void {
    const n = this.session.negotiation;
    if (!this.deviceAccessOk(off, data.length) || !n.has(DeviceStatus.DRIVER) || n.has(DeviceStatus.FAILED)) {
      this.metrics.ignoredAccesses++;
      return;
    }
    this.device.writeConfig(off, data.slice());
  }

  /**
   * A notify write that reached the VMM (no ioeventfd, or a width the ioeventfd does not match):
   * the queue is the one whose notify address was written (offset / multiplier), as an ioeventfd would.
   */
  notify(off: number): void {
    this.metrics.busNotifications++;
    const q = off / NOTIFY_OFF_MULTIPLIER;
    if (!Number.isInteger(q) || q >= this.session.queues.length || !this.activated) {
      this.metrics.ignoredAccesses++;
      return;
    }
    this.deps.queueEvents[q].write(1n);
  }

  // ---- rules the common structure enforces -------------------------------------

  /** Counts and logs (rate-limited) a guest write the rules forbid; returns false for the caller. */
  refuse(what: string): false {
    this.metrics.refusedWrites++;
    this.session.logLimit.log('refused', (suppressed) =>
      this.deps.logger?.warn(
        { device: this.device.id, suppressed },
        `virtio-pci: refused ${what}${suppressedNote(suppressed)}`,
      ),
    );
    return false;
  }

  /** A driver-written vector: kept when the table has it, else NO_VECTOR (which the driver reads back). */
  vectorOrNone(v: number, what: string): number {
    if (v === VIRTIO_MSI_NO_VECTOR || v < this.deps.irq.msixSize) return v;
    this.refuse(`${what} ${v}: the MSI-X table has ${this.deps.irq.msixSize} entries`);
    return VIRTIO_MSI_NO_VECTOR;
  }

  /** The driver wrote device_status. */
  writeStatus(v: number): void {
    if (this.session.writeStatus(v) === 'reset') this.resetRegisters();
  }

  /**
   * The driver turned bus mastering off (command register) while the device was running. A function without
   * bus mastering may neither access guest memory nor send MSI-X messages (PCI 3.0, 6.2.2): the device stops
   * here (its queues forgotten, as QEMU stops a virtio function whose bus master bit is cleared) and reads
   * DEVICE_NEEDS_RESET until the driver resets it. Turning bus mastering on again does not restart it.
   */
  busMasterOff(): void {
    if (!this.session.activated) return;
    this.session.stop();
    for (const q of this.session.queues) q.reset();
    this.session.needsReset('the driver turned bus mastering off while the device was running: it stopped');
  }

  /** The VMM resets the function (unplug, PCI reset): back to power-on state. */
  reset(): void {
    this.session.reset();
    this.resetRegisters();
  }

  private resetRegisters(): void {
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
    this.msixConfig = VIRTIO_MSI_NO_VECTOR;
    this.queueVectors.fill(VIRTIO_MSI_NO_VECTOR);
    if (this.isr !== 0) {
      this.isr = 0;
      this.deps.irq.intx(false);
    }
  }

  private deviceAccessOk(off: number, len: number): boolean {
    if (![1, 2, 4, 8].includes(len)) return false;
    const size = this.device.configSize ?? Region.device.length;
    return off + len <= Math.min(size, Region.device.length);
  }

  private raise(isrBit: number, vector: number): void {
    if (this.session.status === 0) return; // a reset device does not interrupt
    const irq = this.deps.irq;
    if (irq.msixEnabled) {
      if (vector === VIRTIO_MSI_NO_VECTOR || vector >= irq.msixSize) return; // the driver asked for none
      this.metrics.interrupts++;
      irq.msix(vector);
      return;
    }
    this.isr |= isrBit; // before the line: the handler reads it at once
    this.metrics.interrupts++;
    irq.intx(true);
  }
}

/** Little-endian value of 1..8 bytes (bigint for 8). */
export function getLe(d: Uint8Array): number | bigint {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  switch (d.length) {
    case 1:
      return v.getUint8(0);
    case 2:
      return v.getUint16(0, true);
    case 4:
      return v.getUint32(0, true);
    case 8:
      return v.getBigUint64(0, true);
    default:
      return 0;
  }
}

/** Writes `value` little-endian into `d` (1, 2, 4 or 8 bytes). */
export function putLe(d: Uint8Array, value: number | bigint): void {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const n = BigInt(value);
  switch (d.length) {
    case 1:
      v.setUint8(0, Number(n & 0xffn));
      break;
    case 2:
      v.setUint16(0, Number(n & 0xffffn), true);
      break;
    case 4:
      v.setUint32(0, Number(n & 0xffff_ffffn), true);
      break;
    case 8:
      v.setBigUint64(0, n & 0xffff_ffff_ffff_ffffn, true);
      break;
  }
}
