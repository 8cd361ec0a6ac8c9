import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import { c } from '../../core/native/libc.js';
import { VhostUserError } from './errors.js';
import { errName, sendWithFds } from './native.js';
import { FLAG_REPLY, FLAG_VERSION, message, reqName } from './protocol.js';
import { MessageReader, type Message } from './reader.js';

/** A reply from the back end: its payload and any fds that came with it (owned by the receiver). */
export interface Reply {
  readonly payload: Uint8Array;
  readonly fds: number[];
}

interface Pending {
  readonly req: number;
  resolve(r: Reply): void;
  reject(e: Error): void;
}

/**
 * One connected vhost-user socket, front-end side. Requests are written at once (sendmsg, fds as
 * SCM_RIGHTS); replies are read on the event loop and matched in order to the requests that expect one
 * (the protocol answers in order and only when asked). When the back end hangs up, a send fails or a reply
 * breaks the protocol, every waiting request fails with VhostUserError('Disconnected' | 'Protocol'), the
 * socket is closed and `onClose` runs once.
 */
export class VhostUserConnection implements Disposable {
  private readonly pending: Pending[] = [];
  private readonly reader: MessageReader;
  private readonly watch: Disposable;
  private closed = false;

  constructor(
    readonly fd: number,
    loop: EventLoop,
    private readonly onClose: (why: string) => void,
  ) {
    this.reader = new MessageReader(fd);
    this.watch = loop.watch(fd, { readable: true }, () => this.readable());
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Sends a request that expects no reply. Throws VhostUserError('Disconnected') when the socket is gone. */
  send(req: number, payload?: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed) throw new VhostUserError('Disconnected', `${reqName(req)}: not connected`, { req });
    const msg = message(req, payload, FLAG_VERSION);
    try {
      let off = sendWithFds(this.fd, msg, fds);
      // Messages are small (at most a few hundred bytes): a full socket means the back end stopped reading.
      while (off >= 0 && off < msg.length) {
        const n = sendWithFds(this.fd, msg.subarray(off));
        if (n < 0) break;
        off += n;
      }
      if (off < msg.length) throw new Error('the socket is full (the back end does not read)');
    } catch (err) {
      const why = `${reqName(req)} failed: ${errName(err)}`;
      this.close(why);
      throw new VhostUserError('Disconnected', why, { req }, { cause: err });
    }
  }

  /** Sends a request and resolves with its reply. */
  request(req: number, payload?: Uint8Array, fds: readonly number[] = []): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      try {
        this.send(req, payload, fds);
      } catch (err) {
        reject(err as Error);
        return;
      }
      this.pending.push({ req, resolve, reject });
    });
  }

  private readable(): void {
    while (!this.closed) {
      let msg: Message | undefined | null;
      try {
        msg = this.reader.next();
      } catch (err) {
        return this.close(`reading from the back end failed: ${errName(err)}`);
      }
      if (msg === undefined) return;
      if (msg === null) return this.close('the back end closed the connection');
      const head = this.pending[0];
      if (!(msg.flags & FLAG_REPLY) || !head || head.req !== msg.req) {
        for (const f of msg.fds) c.close(f);
        const expected = head ? `a reply to ${reqName(head.req)}` : 'nothing';
        return this.close(
          `the back end sent ${reqName(msg.req)} (flags 0x${msg.flags.toString(16)}), expected ${expected}`,
        );
      }
      this.pending.shift();
      head.resolve({ payload: msg.payload, fds: msg.fds });
    }
  }

  /** Closes the socket; requests still waiting fail. `why` goes to onClose (not called by dispose). */
  close(why: string): void {
    if (this.closed) return;
    this.shut(why);
    this.onClose(why);
  }

  private shut(why: string): void {
    this.closed = true;
    this.watch.dispose();
    c.close(this.fd);
    this.reader.discardFds();
    for (const p of this.pending.splice(0)) p.reject(new VhostUserError('Disconnected', why, { req: p.req }));
  }

  /** Closes without calling onClose (the owner is done with it). */
  dispose(): void {
    if (!this.closed) this.shut('closed by the front end');
  }
}
