/** Counters of the boot-time marker device. */
export class BootTimerMetrics {
  /** Milliseconds from VM assembly to the first marker (undefined until the guest writes it). */
  bootTimeMs: number | undefined;
  /** Marker writes seen (a guest may write it more than once). */
  markers = 0;
  /** Writes that were not the marker (other values or offsets), ignored. */
  otherWrites = 0;

  toJSON(): Record<string, number> {
    return {
      ...(this.bootTimeMs !== undefined ? { bootTimeMs: this.bootTimeMs } : {}),
      markers: this.markers,
      otherWrites: this.otherWrites,
    };
  }
}
