/** What a balloon reports: the target the host set, what the guest says it gave, its last statistics. */
export interface BalloonStatus {
  /** Bytes the host asked the balloon to hold. */
  readonly targetBytes: bigint;
  /** Bytes the guest driver reports the balloon holds (its `actual` field: guest-written, a report, not a proof). */
  readonly actualBytes: bigint;
  /** The guest's last memory statistics (virtio 1.2 §5.5.6.3), by name (`freeMemory`, `totalMemory`, ...). */
  readonly stats?: Readonly<Record<string, number>>;
  /** When those statistics arrived (ms since the epoch). */
  readonly statsAt?: number;
}

/**
 * A memory balloon as the VMM's control side uses it (the `Balloon` token, provided by the
 * virtio-balloon plugin): change the target while the guest runs, read what the guest reports.
 * The API (`vm.balloon` ...) and tests resolve it from the VM's container.
 */
export interface BalloonControl {
  readonly id: string;
  /** Sets how many bytes the guest should give to the balloon (rounded down to 4 KiB pages); the guest is told. */
  setTarget(bytes: bigint): void;
  status(): BalloonStatus;
  /** Asks the guest for fresh statistics; resolves with them when they arrive (rejects without a stats queue). */
  requestStats(): Promise<Readonly<Record<string, number>>>;
}
