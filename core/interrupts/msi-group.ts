import type { EventFd } from '../events/event-loop.js';
import type { Allocation } from '../platform/resources.js';
import type { InterruptContext } from './context.js';
import { InterruptError } from './errors.js';
import type { MsiGroup, MsiMessage, MsiVector } from './interrupts.js';

/** Largest group: MSI-X's table size limit. */
export const MAX_MSI_VECTORS = 2048;
const U64_END = 1n << 64n;

/** One vector's state. `attached`: its irqfd is registered (unmasked with a message, irqfd path). */
class Vector implements MsiVector {
  message: MsiMessage | undefined;
  masked = true;
  pendingBit = false;
  attached = false;

  constructor(
    readonly index: number,
    readonly line: Allocation,
    readonly fd: EventFd | undefined,
    private readonly group: VmMsiGroup,
  ) {}

  get gsi(): number {
    return this.line.number;
  }
  get notifier(): EventFd | undefined {
    return this.fd;
  }
  get pending(): boolean {
    return this.group.pending(this.index);
  }
  get active(): boolean {
    return !this.masked && this.message !== undefined;
  }
  trigger(): void {
    this.group.trigger(this.index);
  }
}

/**
 * MSI vectors over the VM. With irqfds (the default where the hypervisor has them) an active
 * vector is an MSI route in the VM's routing table plus a registered irqfd, and trigger() is one
 * eventfd write; masking detaches the irqfd, so writes to the notifier wait in its counter
 * (pending) and KVM delivers them when unmask attaches it again. Without irqfds trigger()
 * signals the message directly (vm.signalMsi).
 */
export class VmMsiGroup implements MsiGroup {
  private readonly vectors: Vector[];
  private disposed = false;

  constructor(
    readonly owner: string,
    lines: readonly Allocation[],
    private readonly ctx: InterruptContext,
    private readonly devid: number | undefined,
    wantIrqfd: boolean,
  ) {
    const useIrqfd = wantIrqfd && ctx.vm()?.capabilities.irqfd === true;
    this.vectors = lines.map(
      (l, i) => new Vector(i, l, useIrqfd ? ctx.eventFds.create({ nonBlocking: true }) : undefined, this),
    );
  }

  get size(): number {
    return this.vectors.length;
  }

  vector(index: number): MsiVector {
    return this.at(index);
  }

  update(index: number, message: MsiMessage | undefined): void {
    const v = this.at(index);
    if (message !== undefined) checkMessage(this.owner, index, message);
    v.message = message === undefined ? undefined : { address: message.address, data: message.data };
    if (!v.fd) {
      if (v.active && v.pendingBit) this.deliverPending(v);
      return;
    }
    this.ctx.routing.setMsi(v.gsi, message && { ...message, devid: this.devid });
    if (v.active) {
      this.ctx.routing.commit();
      if (!v.attached) this.attach(v);
    } else if (v.attached) this.detach(v);
  }

  mask(index: number): void {
    const v = this.at(index);
    v.masked = true;
    if (v.attached) this.detach(v);
  }

  unmask(index: number): void {
    const v = this.at(index);
    v.masked = false;
    if (!v.active) return;
    if (v.fd && !v.attached) {
      this.ctx.routing.commit();
      this.attach(v);
    } else if (v.pendingBit) this.deliverPending(v);
  }

  trigger(index: number): void {
    const v = this.at(index);
    if (!v.active) {
      v.pendingBit = true;
      return;
    }
    this.fire(v);
  }

  pending(index: number): boolean {
    const v = this.at(index);
    // A notifier written while detached holds its count; take it into the pending bit.
    if (!v.pendingBit && v.fd && !v.attached && v.fd.read() > 0n) v.pendingBit = true;
    return v.pendingBit;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.vectors) {
      if (v.attached) this.detach(v);
      v.fd?.close();
      this.ctx.routing.setMsi(v.gsi, undefined);
    }
    try {
      this.ctx.routing.commit();
    } catch (err) {
      this.ctx.logger?.warn({ err, owner: this.owner }, 'GSI routing update after freeing MSI vectors failed');
    }
    for (const v of this.vectors) v.line.dispose();
  }

  private at(index: number): Vector {
    if (this.disposed) throw new InterruptError('Disposed', `MSI vectors of '${this.owner}' were freed`);
    const v = Number.isInteger(index) ? this.vectors[index] : undefined;
    if (!v)
      throw new InterruptError('Invalid', `'${this.owner}' has no MSI vector ${index} (0..${this.size - 1})`, {
        owner: this.owner,
        index,
      });
    return v;
  }

  private fire(v: Vector): void {
    if (v.attached && v.fd) {
      v.fd.write(1n);
      return;
    }
    const vm = this.ctx.vm();
    if (vm && v.message) vm.signalMsi(v.message);
  }

  /** Registers the irqfd; a count left in it (written while masked) is delivered by the hypervisor now. */
  private attach(v: Vector): void {
    const vm = this.ctx.vm();
    if (!vm || !v.fd) return;
    vm.registerIrqfd(v.fd, v.gsi);
    v.attached = true;
    if (v.pendingBit) this.deliverPending(v);
  }

  private detach(v: Vector): void {
    v.attached = false;
    try {
      this.ctx.vm()?.unregisterIrqfd(v.fd!, v.gsi);
    } catch (err) {
      this.ctx.logger?.warn({ err, owner: this.owner, vector: v.index }, 'irqfd unregister failed');
    }
  }

  private deliverPending(v: Vector): void {
    v.pendingBit = false;
    this.fire(v);
  }
}

function checkMessage(owner: string, index: number, m: MsiMessage): void {
  if (typeof m.address !== 'bigint' || m.address < 0n || m.address >= U64_END)
    throw new InterruptError('Invalid', `'${owner}' vector ${index}: MSI address is not a 64-bit value`, { owner });
  if (!Number.isInteger(m.data) || m.data < 0 || m.data > 0xffff_ffff)
    throw new InterruptError('Invalid', `'${owner}' vector ${index}: MSI data ${m.data} is not a 32-bit value`, {
      owner,
    });
}
