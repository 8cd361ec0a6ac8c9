import type { EventFd } from '../../core/events/event-loop.js';
import type { IoEventRegistration, Vm } from '../../core/hypervisor/hypervisor.js';
import type { Logger } from '../../core/logger.js';
import { NOTIFY_OFF_MULTIPLIER, Region } from './layout.js';

/**
 * The queues' notify ioeventfds of one function: queue i at BAR base + notify offset + i * multiplier,
 * 2 bytes with datamatch = i (Linux writes the queue index as 16 bits), so kicks never reach the VMM.
 * They follow the BAR: place() drops the old registrations and registers at the new base (or none while
 * the BAR is unmapped). Without ioeventfd support (or when a registration fails) the notify write traps
 * and the transport signals the queue's eventfd itself.
 */
export class NotifyEvents {
  private registered: { fd: EventFd; at: IoEventRegistration }[] = [];

  constructor(
    private readonly events: readonly EventFd[],
    private readonly vm: () => Vm | undefined,
    private readonly logger?: Logger,
  ) {}

  /** The BAR base the registrations are at now (undefined: none). */
  base: bigint | undefined;

  /** Moves the registrations to a BAR at `base` (undefined: the BAR is unmapped, none stay). */
  place(base: bigint | undefined): void {
    this.clear();
    this.base = undefined;
    const vm = this.vm();
    if (base === undefined || !vm?.capabilities.ioeventfd) return;
    this.base = base;
    this.events.forEach((fd, i) => {
      const at: IoEventRegistration = {
        space: 'mmio',
        address: base + BigInt(Region.notify.offset + i * NOTIFY_OFF_MULTIPLIER),
        length: 2,
        datamatch: BigInt(i),
      };
      try {
        vm.registerIoeventfd(fd, at);
        this.registered.push({ fd, at });
      } catch (err) {
        this.logger?.warn({ err, queue: i }, 'virtio-pci: ioeventfd registration failed; this queue notify traps');
      }
    });
  }

  /** Unregisters every ioeventfd (the eventfds stay open: the transport owns them). */
  clear(): void {
    const vm = this.vm();
    for (const r of this.registered) {
      try {
        vm?.unregisterIoeventfd(r.fd, r.at);
      } catch (err) {
        this.logger?.warn({ err }, 'virtio-pci: ioeventfd unregister failed');
      }
    }
    this.registered = [];
  }
}
