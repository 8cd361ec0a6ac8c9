import { c } from '../../core/native/libc.js';
import { VhostUserError } from './errors.js';
import { recvWithFds } from './native.js';
import { HEADER_SIZE, MAX_PAYLOAD, reqName } from './protocol.js';

/** One message read off a vhost-user socket: header fields, payload, the fds that came with it. */
export interface Message {
  readonly req: number;
  readonly flags: number;
  readonly payload: Uint8Array;
  readonly fds: number[];
}

/**
 * Reads whole messages from a non-blocking vhost-user socket. It reads the header and then the payload with
 * exact lengths, so fds (which the kernel hands out with the bytes they were sent with) stay with their own
 * message even when several messages wait in the socket.
 */
export class MessageReader {
  private readonly header = new Uint8Array(HEADER_SIZE);
  private have = 0;
  private payload: Uint8Array | undefined;
  private fds: number[] = [];

  constructor(private readonly fd: number) {}

  /**
   * The next complete message, undefined when it has not fully arrived yet, null when the peer closed the
   * connection. Throws NativeError when reading fails and VhostUserError('Protocol') on an oversized message.
   */
  next(): Message | undefined | null {
    for (;;) {
      const target = this.payload ?? this.header;
      if (this.have < target.length) {
        const got = recvWithFds(this.fd, target.subarray(this.have));
        if (got.length < 0) return undefined;
        if (got.length === 0) return null;
        this.fds.push(...got.fds);
        this.have += got.length;
        if (this.have < target.length) continue;
      }
      const dv = new DataView(this.header.buffer);
      if (!this.payload) {
        const size = dv.getUint32(8, true);
        if (size > MAX_PAYLOAD) {
          this.discardFds();
          throw new VhostUserError('Protocol', `${reqName(dv.getUint32(0, true))} message of ${size} bytes`, {});
        }
        this.payload = new Uint8Array(size);
        this.have = 0;
        if (size > 0) continue;
      }
      const msg = { req: dv.getUint32(0, true), flags: dv.getUint32(4, true), payload: this.payload, fds: this.fds };
      this.payload = undefined;
      this.have = 0;
      this.fds = [];
      return msg;
    }
  }

  /** Closes fds received with a message not yet complete. */
  discardFds(): void {
    for (const f of this.fds) c.close(f);
    this.fds = [];
  }
}
