import type { Disposable } from '../../core/bus/bus.js';
import type { EventFd, EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { VirtioActivation } from '../../core/virtio/virtio.js';

/**
 * The call eventfds of a device whose queues another party serves (a vhost-user back end, a kernel vhost
 * device): the transport's irqfd where it offers one (`callEvents`, the interrupt goes straight to KVM), else
 * an eventfd of ours whose signal becomes interrupt.signalUsedQueue (virtio-mmio, whose InterruptStatus
 * register must be set before the line fires). stop() closes ours.
 */
export class CallRelay {
  private calls: EventFd[] = [];
  private watches: Disposable[] = [];
  /** Interrupts relayed through our own eventfds (those that go straight to an irqfd are not seen). */
  relayed = 0;

  constructor(
    private readonly loop: EventLoop,
    private readonly eventFds: EventFdFactory,
  ) {}

  /** The call fd for queue `i` of activation `a`. */
  fd(a: VirtioActivation, i: number): number {
    const given = a.callEvents?.[i];
    if (given) return given.fd;
    const ev = this.eventFds.create();
    this.calls.push(ev);
    this.watches.push(
      this.loop.watch(ev.fd, { readable: true }, () => {
        if (ev.read() === 0n) return;
        this.relayed++;
        a.interrupt.signalUsedQueue(i);
      }),
    );
    return ev.fd;
  }

  /** Stops watching and closes our eventfds (the transport's irqfds are not ours). */
  stop(): void {
    for (const w of this.watches) w.dispose();
    this.watches = [];
    for (const e of this.calls) e.close();
    this.calls = [];
  }
}
