import type { Disposable } from '../bus/bus.js';
import type { EventFd } from '../events/event-loop.js';

/**
 * Interrupts as a service (in the spirit of rust-vmm vm-device's interrupt source groups):
 * devices get interrupt sources from here and never drive the hypervisor's irq lines, GSI
 * routing or irqfds themselves. One implementation (VmInterrupts) owns the VM's GSI routing
 * table, so irqchip pin routes and MSI routes live in one table.
 */
export interface Interrupts {
  /**
   * A legacy line of the platform's interrupt controller: a fixed one (`line` as a number, or a
   * name the platform layout knows: 'com1', 'keyboard') or, without `line`, any free one.
   */
  legacy(opts: LegacyIrqOptions): LegacyIrq;
  /** `count` MSI vectors, each with its own GSI; all start masked and without a message. */
  msiGroup(opts: MsiGroupOptions): MsiGroup;
}

/** How a legacy line signals: a pulse per event, or a level held until the device drops it. */
export type TriggerMode = 'edge' | 'level';

/** What legacy() needs. */
export interface LegacyIrqOptions {
  /** Who holds the line (shown in 'taken' errors and listings). */
  owner: string;
  /** A fixed line (number, or a layout name such as 'com1'); omitted: the lowest free allocatable line. */
  line?: number | string;
  /** Default 'edge'. */
  mode?: TriggerMode;
  /**
   * Wire an irqfd when the hypervisor has them (default false): trigger() then writes an eventfd
   * (no exit, no ioctl) and `notifier` can be handed to a worker or a kernel back end. A level
   * line gets a resample eventfd as well: the hypervisor drops the line at the guest's EOI and
   * onResample() listeners run, so the device re-asserts if it still needs service.
   */
  irqfd?: boolean;
}

/** Something that raises one interrupt. */
export interface InterruptSource {
  /** The GSI the hypervisor knows it by. */
  readonly gsi: number;
  /** Raises the interrupt once (edge pulse, level assert, MSI message; pending if masked). */
  trigger(): void;
  /**
   * The irqfd behind this source, when one is wired: writing 1 to it raises the interrupt inside
   * the hypervisor. For a worker thread or a kernel back end (vhost); undefined without irqfd.
   */
  readonly notifier: EventFd | undefined;
}

/** One legacy line, held until dispose() (which frees it for reuse). */
export interface LegacyIrq extends InterruptSource, Disposable {
  readonly owner: string;
  readonly mode: TriggerMode;
  /**
   * Drives the line. Level: true asserts, false de-asserts (with an irqfd the hypervisor
   * de-asserts at the guest's EOI instead, and false is ignored). Edge: true pulses, false does nothing.
   */
  setLevel(level: boolean): void;
  /** Level lines with an irqfd: `cb` runs on the main thread after each guest EOI of the line. */
  onResample(cb: () => void): Disposable;
}

/** An MSI message as the guest programmed it (MSI capability or MSI-X table entry). */
export interface MsiMessage {
  address: bigint;
  data: number;
}

/** What msiGroup() needs. */
export interface MsiGroupOptions {
  owner: string;
  /** Number of vectors (1..2048, MSI-X's maximum). */
  count: number;
  /** A requester id for platforms whose MSI routes need one (passed on as the route's devid). */
  devid?: number;
  /** Wire one irqfd per vector when the hypervisor has them (default true). */
  irqfd?: boolean;
}

/** One vector of a group, as the group keeps it. */
export interface MsiVector extends InterruptSource {
  readonly index: number;
  readonly message: MsiMessage | undefined;
  readonly masked: boolean;
  /** A trigger arrived while masked (or before a message was set) and waits for unmask. */
  readonly pending: boolean;
}

/**
 * A group of MSI vectors (one device's MSI or MSI-X capability). A vector delivers only while
 * it is unmasked and has a message; a trigger otherwise sets its pending bit, and unmask (or
 * the message arriving) delivers it. Writes to a vector's notifier while it is masked are
 * pending too (the irqfd is detached while masked; see pending()). dispose() frees the GSIs.
 */
export interface MsiGroup extends Disposable {
  readonly owner: string;
  readonly size: number;
  vector(index: number): MsiVector;
  /** Sets (or clears, with undefined) a vector's message; the GSI route follows at once. */
  update(index: number, message: MsiMessage | undefined): void;
  mask(index: number): void;
  /** Unmasks; a pending interrupt is delivered now. */
  unmask(index: number): void;
  trigger(index: number): void;
  /** The pending bit (MSI-X PBA); also true when the vector's notifier was written while masked. */
  pending(index: number): boolean;
}
