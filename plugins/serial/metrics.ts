/** Counters of one UART, readable by the host's metrics endpoint and by tests. */
export class SerialMetrics {
  /** Bytes the guest wrote to THR outside loopback (handed to the console). */
  txBytes = 0;
  /** Bytes that entered the RX FIFO (console input or loopback). */
  rxBytes = 0;
  /** Bytes lost because the RX FIFO was full (overrun; loopback only, console input waits instead). */
  rxDropped = 0;
  /** Bytes the console could not take (e.g. no client connected, output cap reached). */
  txDropped = 0;
  /** Rising edges of the interrupt line. */
  irqRaised = 0;
  /** Failures while driving the interrupt line (logged, never thrown to the guest). */
  irqErrors = 0;
  /** Accesses wider than one byte or outside the 8 registers (split or ignored). */
  oddAccesses = 0;

  toJSON(): Record<string, number> {
    return {
      txBytes: this.txBytes,
      rxBytes: this.rxBytes,
      rxDropped: this.rxDropped,
      txDropped: this.txDropped,
      irqRaised: this.irqRaised,
      irqErrors: this.irqErrors,
      oddAccesses: this.oddAccesses,
    };
  }
}
