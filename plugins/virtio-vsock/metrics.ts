/** Counters of one vsock device (monotonic; plain numbers, JSON-ready). */
export interface VsockMetrics {
  /** Packets taken from the guest's TX queue. */
  txPackets: number;
  /** Packets given to the guest's RX queue. */
  rxPackets: number;
  /** Payload bytes guest → host and host → guest. */
  txBytes: number;
  rxBytes: number;
  /** Connections opened by the guest (to `<uds>_<port>`) and by the host (through `<uds>`). */
  guestConnections: number;
  hostConnections: number;
  /** Connections refused (too many, bad CONNECT line, device not ready). */
  refusedConnections: number;
  /** Connections reset for a protocol breach (credit overrun, bad state, no answer). */
  resets: number;
  /** Packets dropped: wrong CID, wrong type, malformed. */
  droppedPackets: number;
  /** Control packets dropped because the guest gave no RX buffers for too long. */
  droppedControl: number;
}

/** A fresh set of counters. */
export const zeroVsockMetrics = (): VsockMetrics => ({
  txPackets: 0,
  rxPackets: 0,
  txBytes: 0,
  rxBytes: 0,
  guestConnections: 0,
  hostConnections: 0,
  refusedConnections: 0,
  resets: 0,
  droppedPackets: 0,
  droppedControl: 0,
});
