/**
 * What the UART needs from a console backend: somewhere to send transmitted
 * bytes and a source of received bytes. Backends are named for their mechanism
 * (stdio, file, unix socket, none) and chosen by `createSerialConsole`.
 */
export interface SerialConsole {
  /** Short name of the mechanism, for logs. */
  readonly kind: string;
  /** A byte the guest transmitted. Must not throw; a backend that cannot take it counts it as dropped. */
  transmit(byte: number): void;
  /** Starts delivering input to `rx` (called once, when the device activates). */
  connect(rx: SerialRxPort): void;
  /** Flushes pending output, stops reading, restores the terminal. Idempotent. */
  close(): void;
}

/** What a console backend needs from the UART's receiver: bounded room and a wake-up when room appears. */
export interface SerialRxPort {
  /** Takes up to `bytes.length` bytes into the RX FIFO; returns how many it took (0 when full). */
  receive(bytes: Uint8Array): number;
  /** Calls `cb` once, on the main loop, when the FIFO has room again after a short `receive`. */
  onRxSpace(cb: () => void): void;
}

/** Called by a backend for bytes it had to drop (output with nowhere to go). */
export type DropCounter = (n: number) => void;
