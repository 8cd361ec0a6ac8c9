/** Counters of one virtio-mmio transport (plain numbers, read by diagnostics). */
export interface VirtioMmioMetrics {
  /** QueueNotify writes that reached the bus (no ioeventfd, or the fallback path). */
  busNotifications: number;
  /** Interrupts raised towards the driver. */
  interrupts: number;
  /** Accesses ignored: wrong size, read-only register, write in the wrong state, unknown offset. */
  ignoredAccesses: number;
  /** Status writes the state machine refused. */
  refusedStatusWrites: number;
  activations: number;
  resets: number;
  /** Times the device was marked DEVICE_NEEDS_RESET. */
  needsReset: number;
  /** Resets whose Status read stayed non-zero until requests in flight ended. */
  drainedResets: number;
  /** Resets that waited past the bound: the device was marked broken. */
  brokenResets: number;
}

/** A VirtioMmioMetrics with every counter at 0. */
export const newMetrics = (): VirtioMmioMetrics => ({
  busNotifications: 0,
  interrupts: 0,
  ignoredAccesses: 0,
  refusedStatusWrites: 0,
  activations: 0,
  resets: 0,
  needsReset: 0,
  drainedResets: 0,
  brokenResets: 0,
});
