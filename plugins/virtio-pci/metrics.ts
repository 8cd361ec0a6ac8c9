/** Counters of one virtio-pci function (plain numbers, read by diagnostics and `counters()`). */
export interface VirtioPciMetrics {
  /** Notify writes that reached the VMM (no ioeventfd matched them). */
  busNotifications: number;
  /** Interrupts raised towards the driver (MSI-X messages or INTx assertions). */
  interrupts: number;
  /** Accesses ignored: wrong width, read-only field, unknown offset. */
  ignoredAccesses: number;
  /** Guest writes refused and logged: queue layout after DRIVER_OK, bad vectors, sizes out of range. */
  refusedWrites: number;
}

/** A VirtioPciMetrics with every counter at 0. */
export const newMetrics = (): VirtioPciMetrics => ({
  busNotifications: 0,
  interrupts: 0,
  ignoredAccesses: 0,
  refusedWrites: 0,
});
