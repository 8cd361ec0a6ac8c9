import type { DescriptorChain, VirtQueue, VirtioInterrupt } from '../../core/virtio/virtio.js';

/** What one drainQueue call did. */
export interface DrainResult {
  /** Chains handled and returned to the used ring. */
  handled: number;
  /** The budget ran out with buffers still available: call again later (e.g. on the next loop turn). */
  more: boolean;
}

/**
 * The standard device-side loop over one queue, with notification suppression that
 * loses no kick: disable notifications, pop and handle every chain, re-enable and
 * re-check; then interrupt the driver if it asked (EVENT_IDX aware).
 * `handle` returns the bytes written into the chain (the used length).
 * At most `budget` chains are handled per call, so a driver that keeps adding
 * buffers cannot starve the main loop. VirtQueueError propagates: the caller
 * reports it through VirtioActivation.needsReset().
 */
export function drainQueue(
  queue: VirtQueue,
  handle: (chain: DescriptorChain) => number,
  interrupt?: VirtioInterrupt,
  budget = 1024,
): DrainResult {
  let handled = 0;
  let more = false;
  try {
    outer: do {
      queue.disableNotification();
      for (let c = queue.pop(); c; c = queue.pop()) {
        queue.addUsed(c.head, handle(c));
        if (++handled >= budget) {
          more = true;
          break outer;
        }
      }
    } while (queue.enableNotification());
  } finally {
    if (handled > 0 && queue.needsNotification()) interrupt?.signalUsedQueue(queue.index);
  }
  return { handled, more };
}
