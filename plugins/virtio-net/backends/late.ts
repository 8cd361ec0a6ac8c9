import type { HostIovec } from '../iovec.js';
import { NO_OFFLOADS, type BackendOffloads, type GuestOffloads, type NetBackend } from './backend.js';
import { NetBackendError } from './errors.js';

/** Every offload a vnet header can carry, either way. */
const EVERY_OFFLOAD: BackendOffloads = {
  host: { csum: true, tso4: true, tso6: true, ecn: true, ufo: true },
  guest: { csum: true, tso4: true, tso6: true, ecn: true, ufo: true },
};

/** What a late backend shows before it is opened. */
export interface LateBackendShape {
  kind: string;
  description: string;
  queuePairs: number;
  vnetHeader: boolean;
}

/**
 * A network backend opened later than the device is built: a live migration's destination builds its VM while the
 * source still has the tap attached (one process at a time). Until `open()` it shows its shape and, with a vnet
 * header, every offload, so the device offers every offload feature: the state the source saved (the features its
 * driver accepted, from the same kind of tap) then always fits. The guest's vCPUs and the device's queues do not run
 * before the destination opened its backends, so nothing else is asked of it then (I/O throws). Once opened, every
 * call goes to the real backend, its offloads included: the guest offloads the driver enabled are narrowed to what the
 * tap takes (as TapBackend.setGuestOffloads does), and a tap takes every offload from the guest whatever it says.
 */
export class LateBackend implements NetBackend {
  readonly kind: string;
  readonly description: string;
  readonly queuePairs: number;
  readonly vnetHeader: boolean;
  private backend?: NetBackend;
  private closed = false;

  constructor(
    shape: LateBackendShape,
    private readonly opener: () => NetBackend,
  ) {
    this.kind = shape.kind;
    this.description = shape.description;
    this.queuePairs = shape.queuePairs;
    this.vnetHeader = shape.vnetHeader;
  }

  /** Whether open() succeeded. */
  get opened(): boolean {
    return this.backend !== undefined;
  }

  get offloads(): BackendOffloads {
    return this.backend?.offloads ?? (this.vnetHeader ? EVERY_OFFLOAD : NO_OFFLOADS);
  }

  /**
   * Opens the backend; one whose kind, queue pairs or vnet header differ from the shape, or without a gathered send
   * (sendv, which this class always shows), is closed again and refused.
   */
  open(): void {
    if (this.closed) throw new NetBackendError('Open', `${this.description}: closed before it was opened`, {});
    if (this.backend) return;
    const b = this.opener();
    if (!b.sendv) {
      b.close();
      throw new NetBackendError(
        'Open',
        `${this.description}: a ${b.kind} backend cannot be opened late (no sendv)`,
        {},
      );
    }
    if (b.queuePairs !== this.queuePairs || b.vnetHeader !== this.vnetHeader || b.kind !== this.kind) {
      b.close();
      throw new NetBackendError(
        'Open',
        `${this.description}: opened as ${b.kind} with ${b.queuePairs} queue pairs, vnet header ${b.vnetHeader}; the device was built for ${this.kind} with ${this.queuePairs}, ${this.vnetHeader}`,
        {},
      );
    }
    this.backend = b;
  }

  private get target(): NetBackend {
    if (this.backend) return this.backend;
    throw new NetBackendError(
      'Open',
      `${this.description} is not opened yet (the migration's source still has it)`,
      {},
    );
  }

  fd(queue: number): number {
    return this.target.fd(queue);
  }
  send(queue: number, frame: Uint8Array): boolean {
    return this.target.send(queue, frame);
  }
  sendv(queue: number, iov: HostIovec): boolean {
    return this.target.sendv!(queue, iov); // open() refuses a backend without it
  }
  recv(queue: number, buf: Uint8Array): number {
    return this.target.recv(queue, buf);
  }
  setGuestOffloads(o: GuestOffloads): void {
    this.target.setGuestOffloads(o);
  }
  setActiveQueuePairs(n: number): void {
    this.target.setActiveQueuePairs?.(n);
  }
  close(): void {
    this.closed = true;
    this.backend?.close();
  }
}
