/** Counters of the CMOS RTC. */
export class RtcMetrics {
  /** Data-port reads and writes. */
  reads = 0;
  writes = 0;
  /** Reads of register A that found UIP set (each costs the guest one retry). */
  uipReads = 0;
  /** Guest time writes rejected as out of range or not BCD (the clock keeps its time). */
  invalidTimeWrites = 0;
  /** Accesses wider than a byte (split into byte accesses). */
  oddAccesses = 0;

  toJSON(): Record<string, number> {
    return {
      reads: this.reads,
      writes: this.writes,
      uipReads: this.uipReads,
      invalidTimeWrites: this.invalidTimeWrites,
      oddAccesses: this.oddAccesses,
    };
  }
}
