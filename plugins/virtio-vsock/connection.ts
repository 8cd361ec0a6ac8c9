import type { Socket } from 'node:net';
import { CONN_BUF_ALLOC } from './constants.js';

/** Where a connection is in its life (Firecracker's ConnState, named for this side). */
export type ConnState =
  /** The host connected to the listener and asked for a guest port: REQUEST sent, RESPONSE awaited. */
  | 'awaiting-guest'
  /** The guest sent REQUEST: connecting to the host's `<uds_path>_<port>`. */
  | 'awaiting-host'
  | 'established'
  /** RST sent or received: the socket is being closed. */
  | 'closed';

/**
 * One stream between a guest port and a host Unix socket, with its credit accounting (virtio 1.2
 * §5.10.6.3): the guest may send at most CONN_BUF_ALLOC bytes more than this side forwarded to the
 * host socket (`fwdCnt`), and this side sends the guest at most `peerBufAlloc - (rxCnt - peerFwdCnt)`.
 * Counters are u32 and wrap, as the driver's.
 */
export class VsockConnection {
  state: ConnState;
  /** Bytes from the host socket waiting to go to the guest. */
  readonly pending: Buffer[] = [];
  pendingBytes = 0;
  /** The guest's receive buffer and how much of what we sent it consumed. */
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  /** Bytes sent to the guest (RW payloads), mod 2^32. */
  rxCnt = 0;
  /** Bytes of the guest's RW payloads handed to the host socket, mod 2^32. */
  fwdCnt = 0;
  /** Bytes of the guest's RW payloads received, mod 2^32 (rxFromGuest - fwdCnt: in flight to the host). */
  txCnt = 0;
  /** fwd_cnt last told to the guest (a CREDIT_UPDATE goes out when it lags far behind). */
  lastFwdSent = 0;
  /** The host ended its side: a SHUTDOWN(SEND) goes to the guest once pending data is delivered. */
  hostEnded = false;
  /** The guest said it will send no more (SHUTDOWN with SEND): the host socket's write side ends. */
  guestEnded = false;
  /** The SHUTDOWN for hostEnded was queued. */
  shutdownSent = false;
  /** A timer or similar to cancel on close. */
  cancel?: () => void;

  constructor(
    /** The port on the host side as the guest sees it (the guest's destination, or a VMM-chosen local port). */
    readonly localPort: number,
    /** The guest's port. */
    readonly peerPort: number,
    readonly socket: Socket,
    state: ConnState,
  ) {
    this.state = state;
  }

  /** Map key of a connection. */
  static key(localPort: number, peerPort: number): string {
    return `${localPort >>> 0}:${peerPort >>> 0}`;
  }

  get key(): string {
    return VsockConnection.key(this.localPort, this.peerPort);
  }

  /** Bytes the guest will still accept from us. */
  get peerCredit(): number {
    const inFlight = (this.rxCnt - this.peerFwdCnt) >>> 0;
    return inFlight >= this.peerBufAlloc ? 0 : this.peerBufAlloc - inFlight;
  }

  /** Bytes the guest sent that the host socket has not taken yet. */
  get inFlightToHost(): number {
    return (this.txCnt - this.fwdCnt) >>> 0;
  }

  /** Our buffer size as advertised. */
  get bufAlloc(): number {
    return CONN_BUF_ALLOC;
  }

  /** Takes up to `n` pending bytes (the payload of one RW packet). */
  take(n: number): Buffer {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0 && this.pending.length > 0) {
      const head = this.pending[0]!;
      if (head.length <= left) {
        parts.push(head);
        this.pending.shift();
        left -= head.length;
      } else {
        parts.push(head.subarray(0, left));
        this.pending[0] = head.subarray(left);
        left = 0;
      }
    }
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.pendingBytes -= out.length;
    this.rxCnt = (this.rxCnt + out.length) >>> 0;
    return out;
  }
}
