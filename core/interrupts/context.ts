import type { EventFdFactory, EventLoop } from '../events/event-loop.js';
import type { Vm } from '../hypervisor/hypervisor.js';
import type { Logger } from '../logger.js';
import type { GsiRoutingTable } from './gsi-routing.js';

/** What the interrupt sources of one VM share: the VM (looked up on first use), eventfds, the routing table. */
export interface InterruptContext {
  /** The VM, or undefined while none exists (then interrupts are dropped). */
  vm(): Vm | undefined;
  readonly eventFds: EventFdFactory;
  /** Watches resample eventfds; without one, level irqfd lines get no resample callbacks. */
  readonly eventLoop?: EventLoop;
  readonly routing: GsiRoutingTable;
  readonly logger?: Logger;
}
