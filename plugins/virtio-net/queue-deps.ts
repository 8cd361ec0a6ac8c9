import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { RateLimiter } from '../../core/ratelimit/rate-limiter.js';
import type { VirtQueue, VirtioInterrupt } from '../../core/virtio/virtio.js';
import type { NetBackend } from './backends/backend.js';
import type { NetBackendError } from './backends/errors.js';
import type { NetQueueMetrics } from './metrics.js';

/** What an RX or a TX queue handler needs from the device. */
export interface NetQueueDeps {
  readonly queue: VirtQueue;
  readonly memory: GuestMemory;
  readonly backend: NetBackend;
  /** Backend queue pair this queue belongs to. */
  readonly backendQueue: number;
  readonly interrupt: VirtioInterrupt;
  readonly limiter: RateLimiter;
  readonly metrics: NetQueueMetrics;
  readonly linkUp: () => boolean;
  /** The driver broke the rules: the transport sets DEVICE_NEEDS_RESET. */
  readonly needsReset: (reason: string) => void;
  /** Runs `cb` on a later loop turn (the yield after QUEUE_BUDGET chains). */
  readonly defer: (cb: () => void) => void;
  readonly onBackendError?: (err: NetBackendError) => void;
}
